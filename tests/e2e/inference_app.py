"""A monitored LLM app run by test_inference_pipeline.py: records inferences through the SDK and exits.

    python inference_app.py        (FLEETWATCH_AGENT_SOCKET names the agent's socket)

Security counters too: a WSGI app behind the SDK middleware answers 401, 403 and 429.
"""

from __future__ import annotations

import logging

from agent.sdk import (
    AgentClient,
    AgentHandler,
    RequestObserver,
    configure_inference,
    inference,
    track_inference,
)

# (model, organization, duration s, input, output, cost, status, ttft)
CALLS = [
    ("qwen2.5:7b", "swag", 0.12, 100, 10, 0.001, "ok", 0.03),
    ("qwen2.5:7b", "swag", 0.30, 1000, 200, None, "ok", 0.08),
    ("qwen2.5:7b", "sci", 2.0, 500, 0, None, "error", None),
    ("llama3", "sci", 0.7, 50, 50, 0.002, "ok", 0.2),
]


def main() -> None:
    client = AgentClient()
    logging.getLogger("fleetwatch.inference").setLevel(logging.INFO)
    logging.getLogger("fleetwatch.inference").addHandler(AgentHandler("llm-app", client=client))
    recorder = configure_inference("llm-app", client=client, flush_interval=3600)
    for model, org, duration, tokens_in, tokens_out, cost, status, ttft in CALLS:
        recorder.record(
            model,
            duration,
            input_tokens=tokens_in,
            output_tokens=tokens_out,
            cost=cost,
            organization=org,
            status=status,
            time_to_first_token=ttft,
            request_id=f"req-inf-{model}-{org}-{status}",
            user="u-1",
        )

    @track_inference(organization="swag", recorder=recorder)
    def ask() -> dict:
        return {"model": "llama3", "usage": {"prompt_tokens": 7, "completion_tokens": 3}}

    ask()
    with inference("llama3", organization="swag", recorder=recorder, cost=0.01) as call:
        call.first_token()
        call.tokens(input=1, output=1)

    observer = RequestObserver("gateway", client=client, flush_interval=3600, log_requests=False)
    for status, org in ((401, "swag"), (401, "swag"), (403, "sci"), (429, "swag")):
        state = observer.begin(None, None)
        observer.finish(
            state, method="POST", path="/v1/chat", route="/v1/chat", status=status, request_bytes=0,
            response_bytes=0, organization=org,
        )  # fmt: skip
    observer.close()
    recorder.close()  # the last flush of the counters
    client.close()
    print("done", flush=True)


if __name__ == "__main__":
    main()
