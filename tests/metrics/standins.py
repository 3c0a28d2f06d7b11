"""Small stand-ins for the downloaded networks, with the same call signatures, made on the fly by the tests."""

import os

import numpy as np
import PIL.Image
import torch
import torch.nn.functional as F

#----------------------------------------------------------------------------

class StandInInception(torch.nn.Module):
    """Inception-like: uint8 NCHW -> linear features of 4x4-pooled pixels, or softmax over `num_classes`."""
    def __init__(self, num_features=16, num_classes=12, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.register_buffer('proj', torch.randn([3 * 4 * 4, num_features], generator=g))
        self.register_buffer('logit_w', torch.randn([num_features, num_classes], generator=g))
        self.register_buffer('logit_b', torch.randn([num_classes], generator=g))

    def forward(self, img: torch.Tensor, return_features: bool = False, use_fp16: bool = False, no_output_bias: bool = False) -> torch.Tensor:
        x = F.adaptive_avg_pool2d(img.to(torch.float32) / 255, [4, 4]).flatten(1)
        features = x @ self.proj
        if return_features:
            return features
        logits = features @ self.logit_w
        if not no_output_bias:
            logits = logits + self.logit_b
        return torch.softmax(logits, dim=1)

class StandInVGG16(torch.nn.Module):
    """VGG16-like: features as above; `return_lpips` gives the raw pixels, so distances are plain L2."""
    def __init__(self, num_features=16, seed=1):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.register_buffer('proj', torch.randn([3 * 4 * 4, num_features], generator=g))

    def forward(self, img: torch.Tensor, resize_images: bool = True, return_features: bool = False, return_lpips: bool = False) -> torch.Tensor:
        if return_lpips:
            return img.to(torch.float32).flatten(1)
        return F.adaptive_avg_pool2d(img.to(torch.float32) / 255, [4, 4]).flatten(1) @ self.proj

def save_torchscript(module, path):
    torch.jit.script(module).save(path)
    return path

#----------------------------------------------------------------------------

def make_image_folder(path, num=24, resolution=8, channels=3, seed=0, labels=None, lo=0, hi=256):
    """A folder of random PNGs img00000.png ... (pixels in [lo, hi)); with `labels`, a dataset.json like
    dataset_tool.py writes. Returns the images as uint8 NCHW, as the dataset yields them."""
    os.makedirs(path, exist_ok=True)
    rnd = np.random.RandomState(seed)
    images = rnd.randint(lo, hi, size=[num, resolution, resolution, channels], dtype=np.uint8)
    names = []
    for i, img in enumerate(images):
        names.append(f'img{i:05d}.png')
        PIL.Image.fromarray(img[:, :, 0] if channels == 1 else img).save(os.path.join(path, names[-1]))
    if labels is not None:
        import json
        with open(os.path.join(path, 'dataset.json'), 'w') as f:
            json.dump(dict(labels=[[n, l] for n, l in zip(names, labels)]), f)
    return images.transpose(0, 3, 1, 2)

class ReplayGenerator(torch.nn.Module):
    """Plays back the given uint8 NCHW images in order (wrapping around), brightened by `shift` grey levels.
    Outputs are offset so that the metrics' (x * 127.5 + 128) -> uint8 conversion recovers them exactly."""
    def __init__(self, images, shift=0):
        super().__init__()
        self.z_dim = 4
        self.c_dim = 0
        self.img_resolution = images.shape[2]
        self.img_channels = images.shape[1]
        self.register_buffer('images', torch.as_tensor(np.asarray(images), dtype=torch.float32))
        self.register_buffer('pos', torch.zeros([], dtype=torch.int64))
        self.shift = shift

    def forward(self, z, c, **kwargs):
        idx = (self.pos + torch.arange(z.shape[0])) % self.images.shape[0]
        self.pos += z.shape[0]
        x = (self.images[idx] + self.shift).clamp(0, 255)
        return (x + 0.25 - 128) / 127.5

#----------------------------------------------------------------------------
