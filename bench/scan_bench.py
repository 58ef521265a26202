"""Scan-stage benchmark: memaudit's implementation against a plain baseline, measured in one run.

    .venv/bin/python bench/scan_bench.py [--quick]

Prints, for each stage, the time of both and their ratio:
1. noise magnitude: batched first-step probe (S=1, G=4) vs the reference code's way, one prompt at a
   time with all 50 steps and 4 generations;
2. extraction: tiled-L2 matrix + exact maximum clique against two baselines, at N = 50, 200 and 500
   generations with 0, 10, 40 and 90% copies: the MemControl reference's own loop (every ordered pair
   in torch, then connected components) and a cheaper numpy loop over unordered pairs (best of 5, 3 and
   3 runs, 1 for the reference's loop at N = 500: one-off warm-up is not the stage's cost);
3. nearest neighbour: chunked exact search vs building the full distance matrix;
4. a second feature extraction of a dataset with the feature cache vs the first.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import memaudit  # noqa: F401  (runtime guards)
from memaudit.tiny.pipeline import build_tiny_pipeline


def timed(function, *args, **kwargs):
    start = time.perf_counter()
    value = function(*args, **kwargs)
    return value, time.perf_counter() - start


def best_of(repeats: int, function, *args, **kwargs):
    """The value and the shortest of ``repeats`` timings (the first call pays one-off warm-up)."""
    runs = [timed(function, *args, **kwargs) for _ in range(repeats)]
    return runs[0][0], min(seconds for _, seconds in runs)


def row(name: str, ours: float, baseline: float, unit: str = "s") -> None:
    print(
        f"{name:<58} memaudit {ours:9.3f} {unit}   baseline {baseline:9.3f} {unit}   speed-up x{baseline / ours:8.1f}"
    )


def bench_noise(prompts: int) -> None:
    from memaudit.sampling.probe import noise_magnitude_scores
    from memaudit.sampling.text import encode_prompts

    pipeline = build_tiny_pipeline(seed=0)
    captions = [f"case {k} small left pleural effusion" for k in range(prompts)]
    embeddings, empty = encode_prompts(pipeline, captions), encode_prompts(pipeline, [""])
    common = dict(num_inference_steps=50, guidance_scale=7.5, latent_size=8, seed=0)
    _, ours = timed(
        noise_magnitude_scores, pipeline, embeddings, empty, generations=4, steps=1, batch_size=32, **common
    )

    def one_prompt_at_a_time():
        for index in range(prompts):
            noise_magnitude_scores(
                pipeline, embeddings[index : index + 1], empty, generations=4, steps=50, batch_size=4, **common
            )

    _, baseline = timed(one_prompt_at_a_time)
    row(
        f"noise magnitude, {prompts} prompts (prompts/s: {prompts / ours:.1f} vs {prompts / baseline:.2f})",
        ours,
        baseline,
    )


def _generations(count: int, fraction: float) -> torch.Tensor:
    """``count`` random 32 px images, a ``fraction`` of them near-identical copies of the first."""
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(count, 3, 32, 32, generator=generator)
    copies = int(count * fraction)
    images[:copies] = images[0] + 0.01 * torch.randn(copies, 3, 32, 32, generator=generator)
    return images


def _reference_components(images: torch.Tensor, threshold: float = 0.1) -> set[int]:
    """The MemControl reference's way (its extraction_attack.py, rewritten here from its description):
    every ordered pair (i, j), i != j, compared in torch tile by tile (16 tiles, the largest un-normalised
    L2, here against our normalised threshold times the root of the tile size), an adjacency list, then
    depth-first connected components."""
    count, side = images.shape[0], images.shape[-1] // 4
    limit = threshold * math.sqrt(images.shape[1] * side * side)

    def tiles(image):
        return image.unfold(1, side, side).unfold(2, side, side).permute(1, 2, 0, 3, 4).reshape(16, -1)

    def near(i: int, j: int) -> bool:
        return torch.norm(tiles(images[i]) - tiles(images[j]), dim=-1).max().item() <= limit

    graph = {i: [j for j in range(count) if j != i and near(i, j)] for i in range(count)}
    seen, largest = set(), set()
    for start in range(count):
        if start in seen:
            continue
        component, stack = set(), [start]
        while stack:
            node = stack.pop()
            if node not in component:
                component.add(node)
                stack.extend(graph[node])
        seen |= component
        largest = max(largest, component, key=len)
    return largest


def _per_pair_components(images: torch.Tensor) -> set[int]:
    """The same loop made cheaper (a stricter baseline): each unordered pair once, in numpy, networkx's
    connected components."""
    import networkx as nx

    count = images.shape[0]
    tiles = images.numpy().astype(np.float64).reshape(count, 3, 4, 8, 4, 8)
    graph = nx.Graph()
    graph.add_nodes_from(range(count))
    for i in range(count):
        for j in range(i + 1, count):
            diff = tiles[i] - tiles[j]
            if np.sqrt((diff**2).mean(axis=(0, 2, 4))).max() <= 0.1:
                graph.add_edge(i, j)
    return max(nx.connected_components(graph), key=len)


def bench_extraction(counts: list[int], fractions: list[float]) -> None:
    """The clique stage across its range, from no copies to nearly all: N generations of one prompt."""
    from memaudit.metrics.cliques import maximum_clique
    from memaudit.metrics.tiled_l2 import tiled_l2

    for count in counts:
        for fraction in fractions:
            images = _generations(count, fraction)
            search, ours = best_of(5, lambda images=images: maximum_clique(tiled_l2(images, images), 0.1, min_size=3))
            component, baseline = best_of(3, _per_pair_components, images)
            reference, slowest = best_of(3 if count <= 200 else 1, _reference_components, images)
            copies = int(count * fraction)
            assert search.exact and len(search.members) == (copies if copies >= 2 else len(search.members))
            assert copies < 2 or len(component) == len(reference) == copies
            print(
                f"extraction stage, N={count:<3}, {fraction:>3.0%} copies (clique {len(search.members):>3})   "
                f"memaudit {1e3 * ours:9.2f} ms   reference's loop {1e3 * slowest:9.1f} ms (x{slowest / ours:6.0f})   "
                f"numpy pair loop {1e3 * baseline:8.1f} ms (x{baseline / ours:5.0f})"
            )


def bench_neighbours(queries: int, references: int, dim: int) -> None:
    from memaudit.metrics.nearest_neighbour import min_cosine_distance

    generator = torch.Generator().manual_seed(0)
    q, r = torch.randn(queries, dim, generator=generator), torch.randn(references, dim, generator=generator)
    (ours_min, _), ours = timed(min_cosine_distance, q, r, chunk_size=512)

    def full_matrix():
        qn, rn = torch.nn.functional.normalize(q.double(), dim=1), torch.nn.functional.normalize(r.double(), dim=1)
        return (1 - qn @ rn.T).min(dim=1).values

    full, baseline = timed(full_matrix)
    assert torch.allclose(ours_min, full.clamp_min(0), atol=1e-12)
    megabytes_full = queries * references * 8 / 2**20
    megabytes_chunk = 512 * references * 8 / 2**20
    row(
        f"nearest neighbour {queries}x{references} (peak matrix {megabytes_chunk:.0f} vs {megabytes_full:.0f} MiB)",
        ours,
        baseline,
    )


def bench_cache(images: int) -> None:
    from PIL import Image
    from safetensors.torch import save_file

    from memaudit.data import ImageCaptionDataset
    from memaudit.features import ExtractorOptions, create_extractor
    from memaudit.features.cache import FeatureCache, dataset_features

    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        rng = np.random.default_rng(0)
        rows = []
        for index in range(images):
            Image.fromarray((rng.random((128, 128)) * 255).astype(np.uint8)).save(root / f"{index}.png")
            rows.append({"file_name": f"{index}.png", "text": ""})
        (root / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        import torchxrayvision as xrv

        weights = root / "densenet.safetensors"
        save_file({k: v.contiguous() for k, v in xrv.models.DenseNet(weights=None).state_dict().items()}, str(weights))
        extractor = create_extractor("xrv-densenet121", ExtractorOptions(weights=weights))
        dataset = ImageCaptionDataset(root)
        cache = FeatureCache(root / "cache", extractor)
        first, cold = timed(dataset_features, dataset, extractor, cache=cache)
        second, warm = timed(dataset_features, ImageCaptionDataset(root), extractor, cache=cache)
        assert torch.equal(first, second)
        row(f"xrv-densenet121 features of {images} images, cached vs first", warm, cold)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU")
    bench_noise(4 if args.quick else 16)
    bench_extraction([50, 100] if args.quick else [50, 200, 500], [0.0, 0.1, 0.4, 0.9])
    bench_neighbours(500, 5000, 256) if args.quick else bench_neighbours(2000, 20000, 1024)
    bench_cache(8 if args.quick else 64)


if __name__ == "__main__":
    main()
