"""Performance: processes, precision and data loading; none of these change what is learnt."""

import torch

from .spec import Group, Option, check
from .presets import small

def cpu_has_native_bf16():
    """Whether this CPU computes bfloat16 in hardware (AVX-512 BF16 or AMX); elsewhere autocast emulates it, slowly."""
    checks = [getattr(torch.cpu, name, None) for name in ('_is_avx512_bf16_supported', '_is_amx_tile_supported')]
    return any(fn() for fn in checks if fn is not None)

def apply(opts, args):
    args.num_gpus = opts.gpus # resolved (and checked against torchrun) before any group, since others split by it
    G, D = args.G_kwargs.synthesis_kwargs, args.D_kwargs
    per_layer = 'num_fp16_res' in D # networks that set their precision per layer (StyleGAN2's)
    if per_layer and (opts.fp32 or opts.device_type != 'cuda'):
        G.num_fp16_res = D.num_fp16_res = 0 # fp16 is a GPU speed-up; on a CPU it would only be slower and less exact
        if opts.fp32:
            G.conv_clamp = D.conv_clamp = None
    if opts.nhwc:
        check(per_layer, '--nhwc needs --arch=stylegan2 (its fp16 layers)')
        G.fp16_channels_last = D.block_kwargs.fp16_channels_last = True
    if opts.nobench:
        args.cudnn_benchmark = False
    if opts.allow_tf32:
        args.allow_tf32 = True
    bf16 = opts.bf16
    if bf16 is None and small(opts.cfg).get('bf16') == 'auto': # the config's default, where it is a speed-up
        bf16 = opts.device_type == 'cpu' and cpu_has_native_bf16() and not per_layer
    if bf16:
        check(opts.device_type == 'cpu', '--bf16 is for training on a CPU; on a GPU the fp16 layers do this (--fp32=0)')
        check(not per_layer, '--bf16: the stylegan2 backbone sets its own precision per layer; bf16 autocast is for '
            'dcgan, resnet, mlp')
        args.loss_kwargs.bf16 = True

GROUP = Group('Performance', [
    Option('--gpus',       help='Processes to train with: one per GPU, or CPU processes without CUDA [default: 1]', type=int, metavar='INT'),
    Option('--workers',    help='Data-loading worker processes per training process [default: 3, at most the cores per process]', type=int, metavar='INT',
        sets='data_loader_kwargs.num_workers', minimum=1),
    Option('--fp32',       help='Train in float32 throughout (no fp16 layers)', type=bool, metavar='BOOL'),
    Option('--bf16',       help='On a CPU, run G and D in bfloat16 autocast (faster with AVX-512 BF16 or AMX) [default: stacked-mnist: true on such a CPU; else false]', type=bool, metavar='BOOL'),
    Option('--nhwc',       help='Channels-last memory layout for the fp16 layers', type=bool, metavar='BOOL'),
    Option('--nobench',    help='Turn off cuDNN autotuning', type=bool, metavar='BOOL'),
    Option('--allow-tf32', help='Let matmul and convolutions use TF32', type=bool, metavar='BOOL'),
], apply)
