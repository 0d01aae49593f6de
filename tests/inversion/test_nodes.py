"""inversion.* nodes: what a user relies on (tiny random networks, 16 px, so each test is fast).

Mutants seen to fail here: the target's features recomputed each step (call count); the domain
term left on under a mask; the loss mean over the batch instead of per-image sums (independence);
Manipulate editing every layer (layer test); StyleMix replacing layers before ``start``; the
boundary sign flipped (direction test); the face check skipped (node test), either of its two
criteria dropped (each seen failing the pictures test); init_generator ignored (init test).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

import nodegraph
from nodegraph.node import Context, NodeError
from nodes.inversion.net import Encoder, EncoderConfig
from nodes.stylegan.v1 import GeneratorV1, StyleGANV1Config

S, L = 16, 6


class CountingF(nn.Module):
    """A small fixed conv feature net that counts its calls."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(3)
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return torch.relu(self.conv(x))


@pytest.fixture(scope="module")
def nets():
    torch.manual_seed(0)
    g = GeneratorV1(StyleGANV1Config(S, fmaps_max=8)).eval()
    g.truncation.w_avg.normal_(0, 0.3)
    e = Encoder(EncoderConfig(S, 512, 8, 16)).eval()
    return g, e


def _target(g: GeneratorV1, seed: int = 1, n: int = 1) -> torch.Tensor:
    with torch.no_grad():
        wp = g.truncation.w_avg + 0.5 * torch.randn(n, L, 512, generator=torch.Generator().manual_seed(seed))
        return (g(wp) + 1) / 2


def _opt(**params):
    events = []
    params.setdefault("face_check", "")  # 16 px images of tiny random networks are no faces
    node = nodegraph.create("inversion.Optimize", **params)
    node.ctx = Context(emit=lambda ev, **kw: events.append((ev, kw)), node_id="inv")
    return node, events


def test_optimize_lowers_loss_grads_reach_code_only_and_features_once(nets):
    g, e = nets
    f = CountingF()
    node, events = _opt(steps=5, lambda_feat=0.1)
    out = node(image=_target(g), generator=g, encoder=e, perceptual=f)
    assert out["wplus"].shape == (1, L, 512) and out["image"].shape == (1, 3, S, S)
    assert out["loss"].shape == (5,) and out["loss"][-1] < out["loss"][0]
    assert f.calls == 1 + 5                                   # target once, then one per step
    assert all(p.grad is None for m in (g, e, f) for p in m.parameters())
    assert all(p.requires_grad for p in f.parameters())       # flags restored afterwards
    assert [kw["i"] for ev, kw in events if ev == "progress"] == list(range(1, 6))


def test_step0_loss_is_the_paper_objective(nets):
    g, e = nets
    x = _target(g)
    f = CountingF()
    node, _ = _opt(steps=1, lambda_pix=1.0, lambda_feat=0.1, lambda_dom=2.0)
    out = node(image=x, generator=g, encoder=e, perceptual=f)
    with torch.no_grad():
        xs = x * 2 - 1
        w = e(xs)
        rec = g(w)
        want = ((xs - rec) ** 2).mean() + 0.1 * ((f(x) - f((rec + 1) / 2)) ** 2).mean() \
            + 2.0 * ((w - e(rec)) ** 2).mean()
    assert abs(float(out["loss"][0]) - float(want)) < 1e-5


def test_images_in_a_batch_are_inverted_independently(nets):
    g, e = nets
    x = _target(g, seed=4, n=2)
    node, _ = _opt(steps=3, lambda_feat=0)
    both = node(image=x, generator=g, encoder=e)["wplus"]
    one = node(image=x[1:], generator=g, encoder=e)["wplus"]
    assert (both[1:] - one).abs().max() < 1e-5


def test_mask_ignores_outside_and_turns_regulariser_off(nets):
    g, e = nets
    x = _target(g, seed=5)
    m = torch.zeros(1, 1, S, S)
    m[..., 4:12, 4:12] = 1
    y = x.clone()
    y[..., :2, :] = 1 - y[..., :2, :]                          # differs outside the mask only
    node, _ = _opt(steps=4, lambda_feat=0, init="mean")
    a = node(image=x, generator=g, encoder=e, mask=m)
    b = node(image=y, generator=g, encoder=e, mask=m)
    assert torch.equal(a["wplus"], b["wplus"])
    assert (a["terms"][:, 2] == 0).all()


def test_baseline_without_encoder_from_mean(nets):
    g, _ = nets
    node, _ = _opt(steps=3, lambda_feat=0, lambda_dom=0, init="mean")
    out = node(image=_target(g), generator=g)
    assert out["loss"][-1] < out["loss"][0]


def test_runs_inside_the_executors_inference_mode(nets):
    with torch.inference_mode():
        g = GeneratorV1(StyleGANV1Config(S, fmaps_max=8)).eval()
        x = _target(g)
        node, _ = _opt(steps=2, lambda_feat=0, lambda_dom=0, init="mean")
        out = node(image=x, generator=g)
    assert out["loss"].shape == (2,)


@pytest.mark.parametrize("case, where", [
    ("size", "inputs.image"), ("encoder", "inputs.encoder"), ("code", "inputs.init_code"),
    ("no_encoder", "params.init"), ("no_perceptual", "params.lambda_feat")])
def test_bad_input_names_node_port_before_work(nets, case, where):
    g, e = nets
    f = CountingF()
    kw = {"image": _target(g), "generator": g, "encoder": e, "perceptual": f}
    params = {"steps": 3}
    if case == "size":
        kw["image"] = torch.rand(1, 3, 32, 32)
    elif case == "encoder":
        kw["encoder"] = Encoder(EncoderConfig(32, 512, 8, 16))
    elif case == "code":
        kw["init_code"], params["init"] = torch.zeros(1, 14, 512), "code"
    elif case == "no_encoder":
        del kw["encoder"]
    elif case == "no_perceptual":
        del kw["perceptual"]
    node, events = _opt(**params)
    with pytest.raises(NodeError) as err:
        node(**kw)
    assert err.value.where == f"inv.{where}" and "inv" in str(err.value)
    assert f.calls == 0 and not events


def test_interpolate_stylemix_stitch():
    a, b = torch.zeros(1, L, 512), torch.ones(1, L, 512)
    out = nodegraph.create("inversion.Interpolate", steps=5)(a=a, b=b)["wplus"]
    assert out.shape == (5, L, 512) and torch.allclose(out[:, 0, 0], torch.linspace(0, 1, 5))
    style, content = torch.ones(2, L, 512), torch.zeros(3, L, 512)
    mix = nodegraph.create("inversion.StyleMix")(style=style, content=content)["wplus"]
    assert mix.shape == (6, L, 512)
    assert (mix[:, :L - 4] == 0).all() and (mix[:, L - 4:] == 1).all()
    t, c = torch.ones(1, 3, 32, 32), torch.zeros(4, 3, 32, 32)
    st = nodegraph.create("inversion.Stitch", center_x=0.5, center_y=0.5, crop=0.25)(target=t, context=c)
    assert st["image"].shape == (4, 3, 32, 32) and st["mask"].sum() == 4 * 64
    assert torch.equal(st["image"], st["mask"].expand(-1, 3, -1, -1))


def test_manipulate_from_converted_boundary_edits_chosen_layers(tmp_path):
    import numpy as np

    from nodes.inversion.convert import convert_boundary

    n = np.zeros((1, L, 512), np.float32)
    n[..., 0] = 1
    np.save(tmp_path / "b.npy", {"boundary": n, "meta_data": {"manipulate_layers": [1, 2]}})
    convert_boundary(str(tmp_path / "b.npy"), str(tmp_path / "b.safetensors"))
    node = nodegraph.create("inversion.Manipulate", boundary=str(tmp_path / "b.safetensors"))
    out = node(wplus=torch.zeros(2, L, 512))
    wp = out["wplus"].view(2, 7, L, 512)
    assert torch.allclose(wp[0, :, 1, 0], torch.linspace(-3, 3, 7))
    assert (wp[:, :, [0, 3, 4, 5]] == 0).all() and (wp[..., 1:] == 0).all()


def test_learn_boundary_finds_the_attribute_direction():
    gen = torch.Generator().manual_seed(0)
    codes = torch.randn(1000, 2, 512, generator=gen)
    true = torch.randn(512, generator=gen)
    true /= true.norm()
    labels = (codes[:, 0] @ true > 0).float()
    out = nodegraph.create("inversion.LearnBoundary")(wplus=codes, labels=labels)
    b = out["boundary"]
    assert b.shape == (1, 2, 512) and torch.allclose(b.norm(dim=-1), torch.ones(1, 2), atol=1e-5)
    assert float(b[0, 0] @ true) > 0.5 and out["accuracy"][0] > 0.95
    with pytest.raises(NodeError, match="both classes"):
        nodegraph.create("inversion.LearnBoundary")(wplus=codes, labels=torch.ones(1000))


def _pictures() -> dict[str, torch.Tensor]:
    import skimage.data as skd
    import torch.nn.functional as tf

    out = {}
    for name in ("camera", "chelsea", "coffee", "rocket", "page"):
        a = torch.from_numpy(getattr(skd, name)()).float() / 255
        a = a[..., None].expand(-1, -1, 3) if a.dim() == 2 else a[..., :3]
        out[name] = tf.interpolate(a.permute(2, 0, 1)[None], size=(64, 64), mode="area")
    out["noise"] = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    out["grey"] = torch.full((1, 3, 64, 64), 0.5)
    return out


def test_face_check_passes_procedural_faces_and_refuses_pictures():
    """The shipped parser's two criteria (both eyes, confidence) on 64 px images: held-out faces
    pass, photos / textures / text / noise / flat grey are refused; each criterion is needed."""
    from nodes.inversion import domain

    parser = domain.load_parser("face_parser_default")
    faces = nodegraph.create("data.Portraits", size=64, count=24, seed=21, batch_size=24)()["image"]
    assert domain.not_faces(parser, faces) == []
    pics = _pictures()
    x = torch.cat(list(pics.values()))
    refused = {list(pics)[i] for i, _, _ in domain.not_faces(parser, x)}
    assert refused == set(pics)
    eyes, conf = domain.face_scores(parser, x)
    noise, page = list(pics).index("noise"), list(pics).index("page")
    assert eyes[noise] >= domain.EYE_MIN and conf[noise] < domain.CONF_MIN   # only confidence catches noise
    assert eyes[page] < domain.EYE_MIN and conf[page] >= domain.CONF_MIN     # only the eyes catch a text page


def test_optimize_refuses_a_non_face_before_work_and_can_be_told_not_to(nets):
    g, e = nets
    f = CountingF()
    x = torch.rand(2, 3, S, S, generator=torch.Generator().manual_seed(1))
    kw = {"image": x, "generator": g, "encoder": e, "perceptual": f}
    node, events = _opt(steps=2, face_check="face_parser_default")
    with pytest.raises(NodeError) as bad:
        node(**kw)
    msg = str(bad.value)
    assert bad.value.where == "inv.inputs.image" and "image 0" in msg and "image 1" in msg and "''" in msg
    assert f.calls == 0 and not events
    node, _ = _opt(steps=2, face_check="")
    assert node(**kw)["loss"].shape == (2,)
    node, _ = _opt(steps=1, face_check="face_parser_default", lambda_dom=0)   # diffusion: composites allowed
    assert node(**kw, mask=torch.ones(1, 1, S, S))["loss"].shape == (1,)


def test_encoder_init_generator_starts_codes_in_w(tmp_path):
    """init_generator: in training mode the codes' per-dimension batch mean and spread are the
    generator's w statistics (the last BN's beta and frozen gamma), not 0 and 1; a generator of
    another size is refused naming enc.params.init_generator."""
    from nodegraph.weights import save_atomic
    from nodes.stylegan.net import Generator, StyleGANConfig

    paths = {}
    for size in (64, 16):
        torch.manual_seed(0)
        gcfg = StyleGANConfig(size, n_mlp=2, channel_multiplier=1, channel_max=8)
        gen = Generator(gcfg)
        paths[size] = str(tmp_path / f"g{size}.safetensors")
        save_atomic(gen.state_dict(), paths[size], metadata={"config": gcfg.to_json()})
        if size == 64:
            with torch.no_grad(), torch.random.fork_rng():
                torch.manual_seed(0)                                   # the node's params.seed
                w = gen.mapping(torch.randn(4096, 512))

    def encoder(ref: str):
        node = nodegraph.create("inversion.Encoder", init_generator=ref)
        node.ctx = Context(node_id="enc", training=True)
        return node

    node = encoder(paths[64])
    codes = node(image=torch.rand(16, 3, 64, 64))["wplus"]
    assert torch.allclose(codes.mean(0), w.mean(0).expand_as(codes[0]), atol=1e-4)  # training-mode BN: beta
    bn = node.net.block5.bn.bn
    assert torch.allclose(bn.weight, w.std(0).repeat(10)) and not bn.weight.requires_grad
    with pytest.raises(NodeError) as err:
        encoder(paths[16]).ensure_setup()
    assert err.value.where == "enc.params.init_generator"
