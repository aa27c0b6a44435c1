"""DeepLIFT and LRP on resnet18 (224 x 224, 4 real photos): onnxviz on the ONNX export against Captum's DeepLift
and Zennit's EpsilonPlusFlat (ResNet canonizer) on the native module, in one run; then GradientSHAP's peak memory
at n_samples 20 and 200, onnxviz (chunks of --batch-size) against Captum (one batch of n_samples copies), each in
a fresh process (ru_maxrss).

    python benchmarks/bench_rules.py
"""

from __future__ import annotations

import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import torch
from common import best_of, photos, report, resnet18_pair

import onnxviz

N_IMAGES = 4


def distinct_relus(net: torch.nn.Module) -> torch.nn.Module:
    """torchvision's BasicBlock calls one ReLU module twice; Captum's DeepLift needs one module per use."""

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu_a(self.bn1(self.conv1(x)))
        return self.relu_b(self.bn2(self.conv2(out)) + identity)

    for module in net.modules():
        if type(module).__name__ == "BasicBlock":
            module.relu_a, module.relu_b = torch.nn.ReLU(), torch.nn.ReLU()
            module.forward = types.MethodType(forward, module)
    return net


CHILD = """
import resource, sys, time
sys.path.insert(0, sys.argv[4])
import numpy as np, torch, onnxviz
from common import photos
model = onnxviz.load(sys.argv[1])
x = onnxviz.load_image(photos(1), model)
refs = np.zeros((4, *x.shape[1:]), np.float32)
n = int(sys.argv[3])
if sys.argv[2] == "onnxviz":
    onnxviz.explain(model, x, "saliency", progress=False)  # conversion and sessions, as the native side has them
    run = lambda: onnxviz.explain(model, x, "gradient_shap", target=0, n_samples=n, baselines=refs, batch_size=32,
                                  progress=False)
else:
    from captum.attr import GradientShap
    from models.exports import torchvision_net
    net = torchvision_net("resnet18", seed=0).eval()
    run = lambda: GradientShap(net).attribute(torch.from_numpy(x), baselines=torch.from_numpy(refs), n_samples=n,
                                              target=0)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
run()
print(base / 1024, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, time.perf_counter() - start)
"""


def speed(rows: list, net, model, x: np.ndarray, targets: np.ndarray) -> None:
    from captum.attr import DeepLift
    from zennit.composites import EpsilonPlusFlat
    from zennit.torchvision import ResNetCanonizer

    tensor = torch.from_numpy(x)
    ours = best_of(lambda: onnxviz.explain(model, x, "deeplift", target=targets, progress=False))
    theirs = best_of(lambda: DeepLift(distinct_relus(net)).attribute(tensor, baselines=0.0, target=targets.tolist()))
    rows.append(("deeplift", f"onnxviz {ours:.2f} s, Captum DeepLift {theirs:.2f} s -> {theirs / ours:.2f}x "
                             "(goal >= 0.8x)"))

    def zennit_lrp():
        xt = tensor.clone().requires_grad_()
        with EpsilonPlusFlat(canonizers=[ResNetCanonizer()]).context(net) as modified:
            out = modified(xt)
            seed = torch.zeros_like(out)
            seed[torch.arange(len(x)), torch.as_tensor(targets)] = 1
            torch.autograd.grad(out, xt, seed * out)

    ours = best_of(lambda: onnxviz.explain(model, x, "lrp", target=targets, progress=False))
    theirs = best_of(zennit_lrp)
    rows.append(("lrp epsilon_plus_flat", f"onnxviz {ours:.2f} s, Zennit {theirs:.2f} s -> {theirs / ours:.2f}x "
                                          "(goal >= 0.8x)"))


def memory(rows: list, path: Path) -> None:
    here = Path(__file__).resolve().parent
    for who in ("onnxviz", "captum"):
        for n in (20, 200):
            out = subprocess.run([sys.executable, "-c", CHILD, str(path), who, str(n), str(here)], capture_output=True,
                                 text=True, check=True, cwd=here.parent).stdout.split()
            base, peak, seconds = (float(v) for v in out[-3:])
            rows.append((f"gradient_shap {who} n_samples={n}", f"peak RSS {peak:.0f} MiB (+{peak - base:.0f} MiB "
                                                                f"over the loaded model), {seconds:.2f} s"))


def main() -> None:
    torch.set_num_threads(torch.get_num_threads())
    net, path = resnet18_pair()
    net.eval()
    model = onnxviz.load(path)
    x = onnxviz.load_image(photos(N_IMAGES), model)
    targets = onnxviz.explain(model, x, "saliency", progress=False).targets
    rows = [("machine", f"{torch.get_num_threads()} threads, torch {torch.__version__}, {N_IMAGES} photos 224 x 224")]
    speed(rows, net, model, x, targets)
    memory(rows, path)
    report(rows)


if __name__ == "__main__":
    main()
