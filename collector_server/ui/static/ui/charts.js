/* A page of named charts only (API endpoints): load them on every refresh. */
"use strict";
FW.onRefresh(FW.namedCharts());
