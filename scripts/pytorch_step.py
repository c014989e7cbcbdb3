#!/usr/bin/env python3
"""PyTorch CPU peer for `densenet-bench speed`: the seed's d2l DenseNet, one training step (forward,
cross-entropy, backward, SGD lr 0.1) and one forward, timed on the CPU with the same batch and size.

    /usr/bin/python3 scripts/pytorch_step.py --batch 8 --size 64 --threads 2 --iters 20

Needs Debian's python3-torch (1.13). Prints one line per mode: median, min and max ms over --iters.
`densenet-bench compare-pytorch` runs this file (`python3 - ARGS`, --mode train; the package ships it)
in rounds alternated with its own steps.
"""
import argparse
import statistics
import time

import torch
from torch import nn


def conv_block(in_c, out_c):
    return nn.Sequential(nn.BatchNorm2d(in_c), nn.ReLU(), nn.Conv2d(in_c, out_c, kernel_size=3, padding=1))


class DenseBlock(nn.Module):
    def __init__(self, num_convs, in_c, growth):
        super().__init__()
        self.net = nn.Sequential(*[conv_block(in_c + i * growth, growth) for i in range(num_convs)])

    def forward(self, x):
        for blk in self.net:
            x = torch.cat((x, blk(x)), dim=1)
        return x


def transition_block(in_c, out_c):
    return nn.Sequential(nn.BatchNorm2d(in_c), nn.ReLU(), nn.Conv2d(in_c, out_c, kernel_size=1), nn.AvgPool2d(2, 2))


def densenet(num_channels=64, growth=32, arch=(4, 4, 4, 4), num_classes=10):
    layers = [nn.Conv2d(1, num_channels, 7, stride=2, padding=3), nn.BatchNorm2d(num_channels), nn.ReLU(),
              nn.MaxPool2d(3, stride=2, padding=1)]
    c = num_channels
    for i, n in enumerate(arch):
        layers.append(DenseBlock(n, c, growth))
        c += n * growth
        if i != len(arch) - 1:
            layers.append(transition_block(c, c // 2))
            c //= 2
    layers += [nn.BatchNorm2d(c), nn.ReLU(), nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Linear(c, num_classes)]
    return nn.Sequential(*layers)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--batch', type=int, default=8)
    ap.add_argument('--size', type=int, default=64)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--iters', type=int, default=20)
    ap.add_argument('--warmup', type=int, default=3)
    ap.add_argument('--mode', choices=('train', 'forward', 'both'), default='both')
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = densenet()
    x = torch.randn(a.batch, 1, a.size, a.size)
    y = torch.arange(a.batch) % 10
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    loss_fn = nn.CrossEntropyLoss()

    def train():
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()

    def forward():
        with torch.no_grad():
            model(x)

    for name, fn in (('train', train), ('forward', forward)):
        if a.mode not in (name, 'both'):
            continue
        model.train()
        for _ in range(a.warmup):
            fn()
        ms = []
        for _ in range(a.iters):
            t = time.perf_counter()
            fn()
            ms.append((time.perf_counter() - t) * 1000)
        print(f'pytorch {torch.__version__} cpu threads={a.threads} d2l batch={a.batch} {a.size}x{a.size} {name}: '
              f'median {statistics.median(ms):.1f} ms (min {min(ms):.1f}, max {max(ms):.1f})')


if __name__ == '__main__':
    main()
