"""The eye of the small screener: pre-train its vision tower and projector on the synthetic defects.

Stage 1 of `labkit.pretrain` (``labkit pretrain``). A random-initialised ViT learns nothing useful
in the minutes a CPU can give the screening task, so, as a real VLM's vision encoder is trained
before it meets a language model, the small InternVL's own vision tower and projector are trained
first, alone, with a throw-away head:

- every image of a sample goes through ``model.model.get_image_features`` (vision tower, pixel
  shuffle, projector: the very tokens the language model will read), pooled per image (mean and max);
- the head sees, per candidate, its pooled tokens, their difference from the original's and their
  difference from the mean of the other three candidates (siblings share the scene, so what differs
  from them is what the generator got wrong), and predicts which of the four defect dimensions the
  candidate shows (multi-label, binary cross-entropy): perception, not the screening answer;
- all five images of a sample are flipped left-right together half of the time.

`train_vision` returns the log and the held-out per-candidate AUC (1 - max dimension probability
as the acceptability score), measured on a split the pretraining never trains on.

    from labkit.pretrain_vision import image_tensors, train_vision
    X, Y = image_tensors(load_split("data/pretrain", "train"), size=64)
    log = train_vision(model, X, Y, steps=3000, eval_data=image_tensors(test, 64))
"""
from __future__ import annotations

import math
import time

import numpy as np

from labkit.conversions import sample_images
from labkit.data import DEFECT_DIMENSIONS
from labkit.metrics import candidate_auc
from labkit.prompts import IMAGE_LABELS

# torch is imported inside the functions: importing labkit.pretrain (and the CLI) stays fast.


def image_tensors(ds, size: int, progress: bool = True, layout: str = "separate"):
    """``(X, Y)``: uint8 model-input images [n, k, 3, size, size] and defect tags [n, 4, 4].

    ``layout`` as `labkit.conversions.sample_images`: ``separate`` gives k = 5 (original, A-D),
    ``pairs`` gives k = 4 (original beside A, ..., original beside D).
    """
    import torch
    from tqdm.auto import tqdm

    n = len(ds)
    k = len(IMAGE_LABELS[layout])
    X = torch.zeros(n, k, 3, size, size, dtype=torch.uint8)
    Y = torch.zeros(n, 4, len(DEFECT_DIMENSIONS))
    for i in tqdm(range(n), desc=f"images at {size} px", unit="sample", disable=not progress):
        s = ds[i]
        for j, image in enumerate(sample_images(s, layout, size)):
            X[i, j] = torch.from_numpy(np.array(image.convert("RGB"))).permute(2, 0, 1)
        for c, tags in enumerate(s["candidate_defects"] or []):
            for tag in tags:
                Y[i, c, DEFECT_DIMENSIONS.index(tag)] = 1
    return X, Y


HEADS = ("compare", "alone", "alone-linear", "context")


def _head(width: int, kind: str = "compare"):
    """The throw-away head of vision pretraining (``kind`` in `HEADS`).

    - ``compare`` (``separate`` layout): per candidate, an MLP on [pooled, pooled - original,
      pooled - mean of siblings];
    - ``alone`` / ``alone-linear`` (``pairs`` layout): an MLP / a linear map on each image's own
      pooled tokens, so that what the language model must read from an image is in that image;
    - ``context`` (``pairs``): an MLP on [pooled, pooled - mean of the other three pairs].
    """
    import torch
    import torch.nn as nn

    if kind not in HEADS:
        raise ValueError(f"unknown vision head {kind!r}; expected one of {HEADS}")
    n_out = len(DEFECT_DIMENSIONS)

    class DefectHead(nn.Module):
        def __init__(self, d: int):
            super().__init__()
            d_in = {"compare": 6 * d, "alone": 2 * d, "alone-linear": 2 * d, "context": 4 * d}[kind]
            self.mlp = (nn.Linear(d_in, n_out) if kind == "alone-linear"
                        else nn.Sequential(nn.Linear(d_in, 256), nn.GELU(), nn.Linear(256, n_out)))

        def forward(self, tokens):  # [B, k, T, d]
            pooled = torch.cat([tokens.mean(2), tokens.amax(2)], -1)
            if kind == "compare":
                original, cands = pooled[:, :1], pooled[:, 1:]
                siblings = (cands.sum(1, keepdim=True) - cands) / 3
                return self.mlp(torch.cat([cands, cands - original, cands - siblings], -1))
            if kind == "context":
                siblings = (pooled.sum(1, keepdim=True) - pooled) / 3
                return self.mlp(torch.cat([pooled, pooled - siblings], -1))
            return self.mlp(pooled)

    return DefectHead(width)


def _normaliser(processor):
    import torch

    ip = processor.image_processor
    mean = torch.tensor(ip.image_mean).view(1, 3, 1, 1)
    std = torch.tensor(ip.image_std).view(1, 3, 1, 1)
    return lambda x: (x.float() / 255 - mean) / std


def _tokens(model, pixels):
    """The language-model-ready image tokens [B, k, T, d] of images [B, k, 3, s, s] (normalised by the caller)."""
    b, k = pixels.shape[:2]
    flat = pixels.reshape(b * k, *pixels.shape[2:])
    feats = model.model.get_image_features(pixel_values=flat, vision_feature_layer=-1,
                                           vision_feature_select_strategy="default").pooler_output
    return feats.reshape(b, k, feats.shape[1], feats.shape[2])


def vision_auc(model, head, norm, X, Y, batch_size: int = 50) -> dict:
    """Held-out per-candidate AUC of the head's acceptability score (`labkit.metrics.candidate_auc`)."""
    import torch

    model.eval()
    head.eval()
    scores = []
    with torch.no_grad():
        for i in range(0, len(X), batch_size):
            logits = head(_tokens(model, norm(X[i:i + batch_size])))
            scores.append(1 - torch.sigmoid(logits).amax(-1))
    model.train()
    head.train()
    defects = [[[d for k, d in enumerate(DEFECT_DIMENSIONS) if Y[i, c, k] > 0] for c in range(4)] for i in range(len(Y))]
    return candidate_auc(torch.cat(scores).numpy(), defects)


def train_vision(model, processor, X, Y, *, steps: int, batch_size: int = 16, lr: float = 1e-3, seed: int = 0,
                 head: str = "compare", eval_data=None, progress: bool = True) -> dict:
    """Train ``model``'s vision tower and projector in place for ``steps`` steps; return the log.

    ``X``, ``Y``: `image_tensors` of the training samples; ``eval_data``: the same of held-out
    samples for the final AUC. AdamW, linear warm-up then cosine decay, horizontal flips.
    """
    import torch
    import torch.nn.functional as F
    from tqdm.auto import tqdm

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    core = model.model
    model.requires_grad_(False)
    core.vision_tower.requires_grad_(True)
    core.multi_modal_projector.requires_grad_(True)
    head_kind = head
    head = _head(model.config.text_config.hidden_size, head_kind)
    params = [*core.vision_tower.parameters(), *core.multi_modal_projector.parameters(), *head.parameters()]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.05)
    norm = _normaliser(processor)
    model.train()
    t0, losses, order = time.time(), [], np.array([], dtype=int)
    bar = tqdm(total=steps, desc="vision pretraining", unit="step", disable=not progress)
    for step in range(steps):
        if len(order) < batch_size:
            order = np.concatenate([order, rng.permutation(len(X))])
        idx, order = order[:batch_size], order[batch_size:]
        x, y = X[idx], Y[idx]
        if rng.random() < 0.5:  # mirror every image of the sample; a pair's halves each in place
            half = x.shape[-1] // 2
            x = x.flip(-1) if head_kind == "compare" else torch.cat([x[..., :half].flip(-1), x[..., half:].flip(-1)], -1)
        for group in opt.param_groups:
            group["lr"] = lr * min(1.0, (step + 1) / 20) * 0.5 * (1 + math.cos(math.pi * step / steps))
        loss = F.binary_cross_entropy_with_logits(head(_tokens(model, norm(x))), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if (step + 1) % 50 == 0:
            bar.set_postfix(loss=f"{np.mean(losses[-50:]):.3f}")
        bar.update(1)
    bar.close()
    model.requires_grad_(True)
    log = {"head": head_kind, "steps": steps, "batch_size": batch_size, "lr": lr, "seed": seed, "samples": len(X),
           "epochs": steps * batch_size / len(X), "seconds": time.time() - t0,
           "loss_first": float(np.mean(losses[:50])), "loss_last": float(np.mean(losses[-50:]))}
    if eval_data is not None:
        log["heldout_auc"] = vision_auc(model, head, norm, *eval_data)
    return log
