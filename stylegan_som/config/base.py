"""The base config (--cfg): StyleGAN2 networks, optimizers, loss, length and batch from the preset table."""

import dnnlib
from .presets import CFG_SPECS, CIFAR_LIKE

def spec_for(cfg, res, gpus):
    """The preset of `cfg`, with 'auto' filled in from the resolution and process count (upstream's heuristics)."""
    spec = dnnlib.EasyDict(CFG_SPECS[cfg])
    if cfg == 'auto':
        spec.ref_gpus = gpus
        spec.mb = max(min(gpus * min(4096 // res, 32), 64), gpus)   # bounded GPU memory per process
        spec.mbstd = min(spec.mb // gpus, 4)                        # fixed group size keeps other settings stable
        spec.cbase = 32768 if res >= 512 else 16384
        spec.lrate = 0.002 if res >= 1024 else 0.0025
        spec.gamma = 0.0002 * (res ** 2) / spec.mb                  # upstream's heuristic
        spec.ema = spec.mb * 10 / 32
    return spec

def apply(opts, args):
    cfg = opts.cfg
    opts.desc.add('cfg', f'{cfg}{opts.gpus:d}' if cfg == 'auto' else cfg)
    spec = opts.spec = spec_for(cfg, args.training_set_kwargs.resolution, opts.gpus)
    args.G_kwargs = dnnlib.EasyDict(class_name='stylegan_som.networks.stylegan2.Generator', z_dim=spec.get('z_dim', 512),
        w_dim=spec.get('w_dim', 512), mapping_kwargs=dnnlib.EasyDict(), synthesis_kwargs=dnnlib.EasyDict())
    args.D_kwargs = dnnlib.EasyDict(class_name='stylegan_som.networks.stylegan2.Discriminator',
        block_kwargs=dnnlib.EasyDict(), mapping_kwargs=dnnlib.EasyDict(), epilogue_kwargs=dnnlib.EasyDict())
    G, D = args.G_kwargs, args.D_kwargs
    G.synthesis_kwargs.channel_base = D.channel_base = spec.cbase
    G.synthesis_kwargs.channel_max = D.channel_max = spec.cmax
    G.mapping_kwargs.num_layers = spec.map
    G.synthesis_kwargs.num_fp16_res = D.num_fp16_res = 4 # mixed precision at the top 4 resolutions
    G.synthesis_kwargs.conv_clamp = D.conv_clamp = 256   # keeps fp16 activations finite
    D.epilogue_kwargs.mbstd_group_size = spec.mbstd

    args.G_opt_kwargs = dnnlib.EasyDict(class_name='torch.optim.Adam', lr=spec.lrate, betas=[0, 0.99], eps=1e-8)
    args.D_opt_kwargs = dnnlib.EasyDict(class_name='torch.optim.Adam', lr=spec.lrate, betas=[0, 0.99], eps=1e-8)
    args.loss_kwargs = dnnlib.EasyDict(class_name='stylegan_som.loss.StyleGAN2Loss', r1_gamma=spec.gamma)

    args.total_kimg = spec.kimg
    args.batch_size = spec.mb
    args.batch_gpu = max(spec.mb // spec.ref_gpus, 1)
    args.ema_kimg = spec.ema
    args.ema_rampup = spec.ramp
    if cfg in CIFAR_LIKE:
        args.loss_kwargs.pl_weight = 0          # no path-length regularisation
        args.loss_kwargs.style_mixing_prob = 0  # no style mixing
        D.architecture = 'orig'                 # no residual connections in D
