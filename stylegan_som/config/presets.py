"""The base configurations of --cfg, as data, and the per-config defaults other groups read."""

# The first six are upstream StyleGAN2-ADA's (cbase = fmaps * 32768); 'auto' is filled in from the resolution and
# process count. 'tiny' and 'cpu' are ours: small networks that train on a CPU, for the tests (tiny, seconds per
# kimg) and the README demo (cpu, about a minute per kimg at 32x32). gpu: sized for GPUs (train.py says so on a CPU).
CFG_SPECS = {
    #            ref_gpus  kimg     mb  mbstd  cbase  cmax  lrate   gamma  ema  ramp  map
    'auto':      dict(ref_gpus=-1, kimg=25000,  mb=-1, mbstd=-1, cbase=-1,    cmax=512, lrate=-1,     gamma=-1,   ema=-1,  ramp=0.05, map=2),
    'stylegan2': dict(ref_gpus=8,  kimg=25000,  mb=32, mbstd=4,  cbase=32768, cmax=512, lrate=0.002,  gamma=10,   ema=10,  ramp=None, map=8),
    'paper256':  dict(ref_gpus=8,  kimg=25000,  mb=64, mbstd=8,  cbase=16384, cmax=512, lrate=0.0025, gamma=1,    ema=20,  ramp=None, map=8),
    'paper512':  dict(ref_gpus=8,  kimg=25000,  mb=64, mbstd=8,  cbase=32768, cmax=512, lrate=0.0025, gamma=0.5,  ema=20,  ramp=None, map=8),
    'paper1024': dict(ref_gpus=8,  kimg=25000,  mb=32, mbstd=4,  cbase=32768, cmax=512, lrate=0.002,  gamma=2,    ema=10,  ramp=None, map=8),
    'cifar':     dict(ref_gpus=2,  kimg=100000, mb=64, mbstd=32, cbase=32768, cmax=512, lrate=0.0025, gamma=0.01, ema=500, ramp=0.05, map=2),
    'tiny':      dict(ref_gpus=1,  kimg=20,     mb=8,  mbstd=4,  cbase=512,   cmax=32,  lrate=0.0025, gamma=0.01, ema=2.5, ramp=0.05, map=2, z_dim=64,  w_dim=64, tick=1),
    'cpu':       dict(ref_gpus=1,  kimg=200,    mb=16, mbstd=4,  cbase=2048,  cmax=64,  lrate=0.0025, gamma=0.01, ema=5,   ramp=0.05, map=2, z_dim=128, w_dim=128),
    # Small backbones on a CPU (--arch, see SMALL_CFGS for the rest): 2-D toys, and stacked MNIST with DCGAN.
    'toy':       dict(ref_gpus=1,  kimg=4000,   mb=256, mbstd=4, cbase=0,     cmax=0,   lrate=0.001,  gamma=0.01, ema=50,  ramp=0.3,  map=0, z_dim=16,  w_dim=16),
    'stacked-mnist': dict(ref_gpus=1, kimg=400,  mb=32, mbstd=4,  cbase=1024,  cmax=128, lrate=0.0002, gamma=0,    ema=5,   ramp=0.05, map=0, z_dim=100, w_dim=100),
    # Coupled generators (--data2) of two MNIST-sized domains: two DCGANs of half stacked-mnist's width.
    'cogan':     dict(ref_gpus=1,  kimg=200,    mb=32, mbstd=4,  cbase=1024,  cmax=64,  lrate=0.0002, gamma=0,    ema=5,   ramp=0.05, map=0, z_dim=64,  w_dim=64),
}

# One line each for --help.
CFG_HELP = {
    'auto':          'Reasonable defaults from the resolution and GPU count.',
    'stylegan2':     'StyleGAN2 config F at 1024x1024.',
    'paper256':      'FFHQ and LSUN Cat at 256x256, as in the paper.',
    'paper512':      'BreCaHAD and AFHQ at 512x512, as in the paper.',
    'paper1024':     'MetFaces at 1024x1024, as in the paper.',
    'cifar':         'CIFAR-10 at 32x32, as in the paper.',
    'tiny':          'Very small networks for tests (seconds per kimg on a CPU).',
    'cpu':           'Small networks for a CPU demo (about a minute per kimg at 32x32).',
    'toy':           'MLPs on the 2-D toys (--data=ring8 or grid25), a few CPU minutes per run.',
    'stacked-mnist': 'DCGAN on stacked MNIST at 28x28 (--data=stacked-mnist), sized for a CPU.',
    'cogan':         'Coupled DCGANs on two MNIST-sized domains (--data2, --couple), sized for a CPU.',
}

# Configs sized for GPUs: on a CPU a kimg of them takes many minutes and a snapshot hundreds of MB.
GPU_CFGS = ('auto', 'stylegan2', 'paper256', 'paper512', 'paper1024', 'cifar')

# Configs that behave like upstream's 'cifar': no path-length regularisation, no style mixing, plain D.
CIFAR_LIKE = ('cifar', 'tiny', 'cpu', 'toy', 'stacked-mnist', 'cogan')

# Metrics that run when --metrics is not given. FID50k on a CPU takes hours, so the CPU configs skip it; the
# small-backbone configs and point data get their dataset's mode-coverage metric (MODE_METRICS).
DEFAULT_METRICS = dict(tiny=[], cpu=[], toy=[])
DEFAULT_METRICS['stacked-mnist'] = DEFAULT_METRICS['cogan'] = []
MODE_METRICS = {'ring8': 'modes_ring8', 'grid25': 'modes_grid25', 'grid25-unequal': 'modes_grid25_unequal',
    'stacked-mnist': 'modes_stacked_mnist', 'mnist': 'modes_mnist'}

# What the small-backbone configs set besides CFG_SPECS: the backbone, Adam betas, augmentation, network sizes.
# toy: R1 in every step (D_reg_interval=None) and a learning-rate ramp-down over the last quarter; stacked-mnist:
# G's rate 8x D's, batch norm instead of spectral norm in D, bf16 where the CPU computes it natively. The figures
# behind each choice are in bench/RESULTS.md.
SMALL_CFGS = {
    'toy':           dict(arch='mlp',   betas=[0.0, 0.99], aug='noaug', D_reg_interval=None, lr_rampdown=0.25,
                          G=dict(layer_features=128, num_layers=4), D=dict(layer_features=128, num_layers=3)),
    'stacked-mnist': dict(arch='dcgan', betas=[0.5, 0.99], aug='noaug', lr_rampdown=0.25, glr=0.0016, bf16='auto',
                          G=dict(), D=dict(spectral_norm=False, batch_norm=True)),
    # cogan: stacked-mnist's measured DCGAN settings, for each domain's pair of networks.
    'cogan':         dict(arch='dcgan', betas=[0.5, 0.99], aug='noaug', lr_rampdown=0.25, glr=0.0016, bf16='auto',
                          G=dict(), D=dict(spectral_norm=False, batch_norm=True)),
}

# SOM defaults that differ by --cfg (else stylegan_som.som.DEFAULTS), where other values measured better
# (bench/RESULTS.md): the toys end at a wider neighbourhood.
SOM_DEFAULTS_BY_CFG = {'toy': dict(sigma_end=1.0, sigma_start_floor=0.3)}

# Transfer-learning sources of upstream StyleGAN2-ADA (--resume=<name>).
RESUME_SPECS = {
    'ffhq256':     'https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/transfer-learning-source-nets/ffhq-res256-mirror-paper256-noaug.pkl',
    'ffhq512':     'https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/transfer-learning-source-nets/ffhq-res512-mirror-stylegan2-noaug.pkl',
    'ffhq1024':    'https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/transfer-learning-source-nets/ffhq-res1024-mirror-stylegan2-noaug.pkl',
    'celebahq256': 'https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/transfer-learning-source-nets/celebahq-res256-mirror-paper256-kimg100000-ada-target0.5.pkl',
    'lsundog256':  'https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/transfer-learning-source-nets/lsundog-res256-paper256-kimg100000-noaug.pkl',
}

def arch_of(arch, cfg):
    """The --arch in effect: given, else the small config's, else stylegan2."""
    if arch is not None:
        return arch
    return SMALL_CFGS[cfg]['arch'] if cfg in SMALL_CFGS else 'stylegan2'

def small(cfg):
    return SMALL_CFGS.get(cfg, {})
