"""Training-engine overhead: `nodegraph train` step time vs the same step written by hand.

Both run the tiny cGAN of graphs/tiny_cgan_train.json (G step: hinge + feature matching + L1;
D step: hinge on the reused fake), same nets, same batches, one CPU thread. The hand-written loop
is the floor; the difference is what graph evaluation, grad-mode inference and bookkeeping cost.

    python benchmarks/train.py [--steps 100] [--size 32] [--batch 16]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time

import torch
import torch.nn.functional as F

import nodes.common.losses  # noqa: F401
import nodes.common.metrics  # noqa: F401
import nodes.common.toy as toy
from nodegraph.graph import load_graph
from nodegraph.train import Trainer


def engine_time(steps: int, size: int, batch: int) -> float:
    d = tempfile.mkdtemp()
    g = load_graph("graphs/tiny_cgan_train.json").with_overrides({
        "data.size": size, "train.batch_size": batch, "train.steps": steps, "train.log_every": steps,
        "train.sample_every": None, "train.metrics": [], "train.checkpoint_every": 10**9})
    t = Trainer(g, run_dir=d, export=False, progress=False)
    t0 = time.perf_counter()
    t.run()
    dt = time.perf_counter() - t0
    t.close()
    shutil.rmtree(d, ignore_errors=True)
    return dt / steps


def manual_time(steps: int, size: int, batch: int) -> float:
    torch.manual_seed(0)
    G, D = toy.ToyGenerator(4, 16), toy.ToyDiscriminator(4, 16, 2)
    og = torch.optim.Adam(G.parameters(), 1e-3, betas=(0.5, 0.999))
    od = torch.optim.Adam(D.parameters(), 4e-4, betas=(0.5, 0.999))
    ds = toy.ShapesDataset(10**6, 0, size)
    loader = iter(torch.utils.data.DataLoader(ds, batch_size=batch, shuffle=True, drop_last=True))
    t0 = time.perf_counter()
    for _ in range(steps):
        b = next(loader)
        lab, real = b["labels"], b["image"]
        fake = G(lab)
        both = D(torch.cat([fake, real]), torch.cat([lab, lab]))
        ff = [[f[:batch] for f in s] for s in both]
        rf = [[f[batch:] for f in s] for s in both]
        g_gan = sum(-s[-1].mean() for s in ff) / len(ff)
        fm = sum(F.l1_loss(a, b.detach()) for fs, rs in zip(ff, rf, strict=True)
                 for a, b in zip(fs[:-1], rs[:-1], strict=True)) / len(ff)
        loss_g = g_gan + 2 * fm + 10 * F.l1_loss(fake, real)
        og.zero_grad(set_to_none=True)
        loss_g.backward(inputs=list(G.parameters()))
        og.step()
        both = D(torch.cat([fake.detach(), real]), torch.cat([lab, lab]))
        loss_d = sum(F.relu(1 + s[-1][:batch]).mean() + F.relu(1 - s[-1][batch:]).mean() for s in both) / 2
        od.zero_grad(set_to_none=True)
        loss_d.backward()
        od.step()
    return (time.perf_counter() - t0) / steps


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    torch.set_num_threads(1)
    eng, man = [], []
    for _ in range(a.repeats):  # interleaved: the machine is shared, take the best of each
        eng.append(engine_time(a.steps, a.size, a.batch))
        man.append(manual_time(a.steps, a.size, a.batch))
    e, m = min(eng), min(man)
    print(f"| tiny cGAN {a.size}px batch {a.batch}, 1 thread | engine {e * 1e3:.1f} ms/step ({1 / e:.1f} it/s) "
          f"| hand-written {m * 1e3:.1f} ms/step ({1 / m:.1f} it/s) | overhead {100 * (e / m - 1):+.0f}% |")


if __name__ == "__main__":
    main()
