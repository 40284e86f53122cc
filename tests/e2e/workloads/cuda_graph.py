"""torch.cuda.CUDAGraph capture and replay of a small MLP. Prints RESULT lines."""

from __future__ import annotations

import torch
from torch import nn

REPLAYS = 10


def timed(fn) -> float:  # noqa: ANN001 - any callable
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    fn()
    end.record()
    end.synchronize()
    return start.elapsed_time(end)


def main() -> None:
    model = nn.Sequential(nn.Linear(512, 2048), nn.GELU(), nn.Linear(2048, 512)).cuda().eval()
    static_x = torch.randn(256, 512, device="cuda")
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side), torch.no_grad():
        for _ in range(3):  # warm up on a side stream, as capture requires
            model(static_x)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.no_grad(), torch.cuda.graph(graph):
        static_y = model(static_x)
    print(f"RESULT eager_ms={timed(lambda: model(static_x)):.6f}")
    print(f"RESULT one_replay_ms={timed(graph.replay):.6f}")

    def replay_many() -> None:
        for _ in range(REPLAYS):
            graph.replay()

    print(f"RESULT ten_replays_ms={timed(replay_many):.6f}")
    print(f"RESULT replays={REPLAYS + 1}")
    print(f"RESULT out_shape={tuple(static_y.shape)}")
    print("RESULT done=1")


if __name__ == "__main__":
    main()
