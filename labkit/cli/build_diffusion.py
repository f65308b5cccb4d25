"""`labkit build-diffusion --out data/models/tiny-flux`: tiny random FLUX.1 Fill + Redux pipelines.

Builds the real diffusers/transformers classes (FluxFillPipeline: AutoencoderKL with 16
latent channels, FluxTransformer2DModel with Fill's 384 input channels, CLIP and T5 encoders
with locally trained tokenizers; FluxPriorReduxPipeline: SigLIP vision model + ReduxImageEncoder)
at toy sizes with random weights, saved as safetensors under OUT/fill and OUT/redux, so
`labkit generate` runs offline on CPU (see `labkit.diffusion_models`).
"""
from __future__ import annotations


def register(sub):
    p = sub.add_parser("build-diffusion", help="build tiny random FLUX Fill + Redux pipelines offline", description=__doc__)
    p.add_argument("--out", default="data/models/tiny-flux", help="output folder (OUT/fill and OUT/redux are created)")
    p.add_argument("--seed", type=int, default=0, help="initialisation seed")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.set_defaults(func=run)


def run(args) -> int:
    from labkit.diffusion_models import TinyFluxConfig, build_tiny_flux

    paths = build_tiny_flux(args.out, TinyFluxConfig(seed=args.seed))
    print(f"built tiny FLUX Fill in {paths['fill']} and Redux in {paths['redux']} (random weights, seed {args.seed})")
    return 0
