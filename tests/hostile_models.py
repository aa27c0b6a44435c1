"""Crafted broken and hostile ONNX models, a few hundred bytes each, built in code for the hardening tests."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

W = np.arange(48, dtype=np.float32).reshape(3, 16) / 48
X = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 4, 4])
Y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])


def _model(nodes, inits=(), *, outputs=(Y,), inputs=(X,), opsets=(("", 17),), functions=(), sparse=()):
    graph = helper.make_graph(list(nodes), "hostile", list(inputs), list(outputs), list(inits),
                              sparse_initializer=list(sparse))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets],
                              functions=list(functions))
    model.ir_version = 8
    return model


def _head(weight: str = "W") -> list:
    return [helper.make_node("Flatten", ["x"], ["f"]), helper.make_node("Gemm", ["f", weight], ["y"], transB=1)]


def linear(weights: np.ndarray = W) -> onnx.ModelProto:
    """The valid base: y = flatten(x) @ W.T for x of shape (N, 1, 4, 4)."""
    return _model(_head(), [numpy_helper.from_array(weights, "W")])


def _externalize(tensor: onnx.TensorProto, location: str, offset: int | None = None, length: int | None = None):
    tensor.ClearField("raw_data")
    tensor.ClearField("float_data")
    tensor.data_location = TensorProto.EXTERNAL
    tensor.external_data.add(key="location", value=location)
    if offset is not None:
        tensor.external_data.add(key="offset", value=str(offset))
    if length is not None:
        tensor.external_data.add(key="length", value=str(length))


def _const_w(output: str = "W") -> onnx.NodeProto:
    return helper.make_node("Constant", [], [output], value=numpy_helper.from_array(W, "Wc"))


def external(where: str, location: str, offset: int | None = None, length: int | None = None) -> onnx.ModelProto:
    """W kept in an external file, stored as an initializer, a Constant, a sparse initializer, inside an If
    branch, or inside a local function."""
    if where == "initializer":
        model = linear()
        _externalize(model.graph.initializer[0], location, offset, length)
        return model
    if where == "constant":
        model = _model([_const_w(), *_head()])
        _externalize(model.graph.node[0].attribute[0].t, location, offset, length)
        return model
    if where == "sparse":
        values = numpy_helper.from_array(W.ravel(), "W")
        indices = numpy_helper.from_array(np.arange(48, dtype=np.int64), "W_idx")
        sparse = helper.make_sparse_tensor(values, indices, [3, 16])
        _externalize(sparse.values, location, offset, length)
        return _model(_head(), sparse=[sparse])
    if where == "subgraph":
        branch = helper.make_graph([_const_w("Wb")], "branch", [],
                                   [helper.make_tensor_value_info("Wb", TensorProto.FLOAT, [3, 16])])
        _externalize(branch.node[0].attribute[0].t, location, offset, length)
        cond = numpy_helper.from_array(np.array(True), "cond")
        node = helper.make_node("If", ["cond"], ["W"], then_branch=branch, else_branch=branch)
        return _model([node, *_head()], [cond])
    if where == "function":
        fn = helper.make_function("local", "MakeW", [], ["W"], [_const_w()], [helper.make_opsetid("", 17)])
        _externalize(fn.node[0].attribute[0].t, location, offset, length)
        return _model([helper.make_node("MakeW", [], ["W"], domain="local"), *_head()],
                      opsets=(("", 17), ("local", 1)), functions=[fn])
    if where == "function default":  # the default value of a function's attribute: onnxruntime uses it
        const = helper.make_node("Constant", [], ["W"])
        const.attribute.add(name="value", ref_attr_name="w", type=onnx.AttributeProto.TENSOR)
        fn = helper.make_function("local", "MakeW", [], ["W"], [const], [helper.make_opsetid("", 17)])
        default = helper.make_attribute("w", numpy_helper.from_array(W, "Wd"))
        _externalize(default.t, location, offset, length)
        fn.attribute_proto.append(default)
        return _model([helper.make_node("MakeW", [], ["W"], domain="local"), *_head()],
                      opsets=(("", 17), ("local", 1)), functions=[fn])
    if where == "function subgraph":  # a Constant two If levels down inside a function body
        model = external("subgraph", location, offset, length)
        inner = model.graph.node[0]
        inner.input[0] = "c"
        outer_branch = helper.make_graph([inner], "outer", [], [helper.make_tensor_value_info("W", TensorProto.FLOAT,
                                                                                                [3, 16])])
        node = helper.make_node("If", ["c"], ["W"], then_branch=outer_branch, else_branch=outer_branch)
        fn = helper.make_function("local", "MakeW", ["c"], ["W"], [node], [helper.make_opsetid("", 17)])
        return _model([helper.make_node("MakeW", ["cond"], ["W"], domain="local"), *_head()],
                      list(model.graph.initializer), opsets=(("", 17), ("local", 1)), functions=[fn])
    if where == "training_info":  # never run for inference, still a tensor the model carries
        model = linear()
        init = helper.make_graph([_const_w("T")], "init", [], [helper.make_tensor_value_info("T", TensorProto.FLOAT,
                                                                                            [3, 16])])
        _externalize(init.node[0].attribute[0].t, location, offset, length)
        model.training_info.add(initialization=init)
        return model
    if where == "tensors attribute":  # a TENSORS-typed attribute on a node (no standard op reads it)
        model = linear()
        model.graph.node[0].attribute.append(helper.make_attribute("extra", [numpy_helper.from_array(W, "We")]))
        _externalize(model.graph.node[0].attribute[-1].tensors[0], location, offset, length)
        return model
    raise ValueError(where)


def huge_constant() -> onnx.ModelProto:
    """A Constant declaring 10^6 x 10^6 floats (4 TB) and holding none of them."""
    tensor = TensorProto(name="big", data_type=TensorProto.FLOAT, dims=[10**6, 10**6])
    nodes = [helper.make_node("Constant", [], ["big"], value=tensor), *_head()]
    return _model(nodes, [numpy_helper.from_array(W, "W")])


def bomb(op: str) -> onnx.ModelProto:
    """A few bytes that ask a runtime for terabytes: ConstantOfShape, Range, Tile or Expand on constants."""
    ints = lambda name, v: numpy_helper.from_array(np.array(v, np.int64), name)  # noqa: E731
    rank = {"ConstantOfShape": 3, "Range": 1}.get(op, 4)
    out = helper.make_tensor_value_info("big", TensorProto.FLOAT if op != "Range" else TensorProto.INT64,
                                        [f"d{i}" for i in range(rank)])
    small = numpy_helper.from_array(np.ones((1, 1, 4, 4), np.float32), "small")
    nodes, inits = {
        "ConstantOfShape": ([helper.make_node("ConstantOfShape", ["s"], ["big"])], [ints("s", [10**5] * 3)]),
        "Range": ([helper.make_node("Range", ["a", "b", "c"], ["big"])],
                  [ints("a", 0), ints("b", 10**12), ints("c", 1)]),
        "Tile": ([helper.make_node("Tile", ["small", "s"], ["big"])], [small, ints("s", [10**5, 1, 1, 10**5])]),
        "Expand": ([helper.make_node("Expand", ["small", "s"], ["big"])], [small, ints("s", [10**8, 1, 4, 4])]),
    }[op]
    return _model([*nodes, *_head()], [*inits, numpy_helper.from_array(W, "W")], outputs=(Y, out))


def nested_if(depth: int) -> onnx.ModelProto:
    """If inside If inside If ..., `depth` levels, the innermost returning W."""
    out = helper.make_tensor_value_info("Wb", TensorProto.FLOAT, [3, 16])
    leaf = body = helper.make_graph([_const_w("Wb")], "leaf", [], [out])
    for level in range(depth):
        node = helper.make_node("If", ["cond"], ["Wb"], name=f"if_{level}", then_branch=body, else_branch=leaf)
        body = helper.make_graph([node], f"level_{level}", [], [out])
    node = body.node[0]
    node.output[0] = "W"
    return _model([node, *_head()], [numpy_helper.from_array(np.array(True), "cond")])


def cycle() -> onnx.ModelProto:
    nodes = [helper.make_node("Add", ["x", "b"], ["a"], name="first"),
             helper.make_node("Relu", ["a"], ["b"], name="second"), helper.make_node("Flatten", ["b"], ["f"]),
             helper.make_node("Gemm", ["f", "W"], ["y"], transB=1)]
    return _model(nodes, [numpy_helper.from_array(W, "W")])


def undefined_input() -> onnx.ModelProto:
    return _model([helper.make_node("Add", ["x", "ghost"], ["a"], name="reads_a_ghost"),
                   helper.make_node("Flatten", ["a"], ["f"]), helper.make_node("Gemm", ["f", "W"], ["y"], transB=1)],
                  [numpy_helper.from_array(W, "W")])


def foreign_op(domain: str, op: str) -> onnx.ModelProto:
    """x -> DOMAIN::OP -> the linear head (com.microsoft Gelu is a real onnxruntime contrib op)."""
    return _model([helper.make_node(op, ["x"], ["g"], domain=domain), helper.make_node("Flatten", ["g"], ["f"]),
                   helper.make_node("Gemm", ["f", "W"], ["y"], transB=1)], [numpy_helper.from_array(W, "W")],
                  opsets=(("", 17), (domain, 1)))


def newer(ir: bool) -> onnx.ModelProto:
    model = linear()
    if ir:
        model.ir_version = onnx.IR_VERSION + 1
    else:
        model.opset_import[0].version = onnx.defs.onnx_opset_version() + 1
    return model


def nested_loop(depth: int) -> onnx.ModelProto:
    """Loop bodies inside Loop bodies, `depth` levels, beside the linear head."""
    body = None
    for level in range(depth):
        nodes = [helper.make_node("Identity", [f"c{level}"], [f"c{level}_out"])]
        if body is not None:
            nodes.append(helper.make_node("Loop", ["M", f"c{level}"], [], body=body, name=f"loop_{level}"))
        body = helper.make_graph(nodes, f"body_{level}",
                                 [helper.make_tensor_value_info(f"i{level}", TensorProto.INT64, []),
                                  helper.make_tensor_value_info(f"c{level}", TensorProto.BOOL, [])],
                                 [helper.make_tensor_value_info(f"c{level}_out", TensorProto.BOOL, [])])
    loop = helper.make_node("Loop", ["M", "cond"], [], body=body, name="outer")
    inits = [numpy_helper.from_array(np.array(1, np.int64), "M"), numpy_helper.from_array(np.array(True), "cond"),
             numpy_helper.from_array(W, "W")]
    return _model([loop, *_head()], inits)


def value_bomb(op: str) -> onnx.ModelProto:
    """ConstantOfShape, Expand or Tile sized from the input's largest pixel value: nothing on the loader's zero
    probe, n x n floats for an input whose maximum is n (60000 -> 14 GB). The logits depend on it, so it runs."""
    ints = lambda name, v: numpy_helper.from_array(np.array(v, np.int64), name)  # noqa: E731
    size = [helper.make_node("ReduceMax", ["x"], ["m"], keepdims=0),
            helper.make_node("Cast", ["m"], ["mi"], to=TensorProto.INT64),
            helper.make_node("Reshape", ["mi", "one"], ["n"]),
            helper.make_node("Concat", ["n", "n"], ["nn"], axis=0)]
    make = {
        "ConstantOfShape": [helper.make_node("ConstantOfShape", ["nn"], ["big"])],
        "Expand": [helper.make_node("Expand", ["unit", "nn"], ["big"])],
        "Tile": [helper.make_node("Tile", ["unit", "nn"], ["big"])],
    }[op]
    total = [helper.make_node("ReduceSum", ["big"], ["s"], keepdims=0),
             helper.make_node("Mul", ["s", "zero"], ["s0"]), *_head("W"),
             ]
    total[-1].output[0] = "g"
    total.append(helper.make_node("Add", ["g", "s0"], ["y"]))
    inits = [ints("one", [1]), numpy_helper.from_array(np.ones((1, 1), np.float32), "unit"),
             numpy_helper.from_array(np.array(0, np.float32), "zero"), numpy_helper.from_array(W, "W")]
    return _model([*size, *make, *total], inits)


def endless_loop() -> onnx.ModelProto:
    """A Loop with no trip count that runs while the mean pixel is above 0.9: never on the loaders' probes
    (zeros, standard normal noise), forever on a white image. The logits are the head applied to its result."""
    body = helper.make_graph(
        [helper.make_node("Identity", ["c"], ["c_out"]), helper.make_node("Identity", ["v"], ["v_out"])], "spin",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("c", TensorProto.BOOL, []),
         helper.make_tensor_value_info("v", TensorProto.FLOAT, ["N", 1, 4, 4])],
        [helper.make_tensor_value_info("c_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("v_out", TensorProto.FLOAT, ["N", 1, 4, 4])])
    nodes = [helper.make_node("ReduceMean", ["x"], ["m"], keepdims=0),
             helper.make_node("Greater", ["m", "threshold"], ["go"]),
             helper.make_node("Loop", ["", "go", "x"], ["looped"], body=body, name="spin"),
             helper.make_node("Flatten", ["looped"], ["f"]), helper.make_node("Gemm", ["f", "W"], ["y"], transB=1)]
    inits = [numpy_helper.from_array(np.array(0.9, np.float32), "threshold"), numpy_helper.from_array(W, "W")]
    return _model(nodes, inits)


def with_metadata(model: onnx.ModelProto, key: str, value: str) -> onnx.ModelProto:
    model = onnx.ModelProto.FromString(model.SerializeToString())
    onnx.helper.set_model_props(model, {key: value})
    return model


# hostile `onnxviz.preprocessing` metadata: each must be refused or ignored with a clear message, never crash
BAD_PREPROCESSING = {
    "huge size": '{"size": [100000, 100000]}',
    "zero size": '{"size": [0, 5]}',
    "size text": '{"size": "big"}',
    "zero std": '{"std": [0]}',
    "negative std": '{"std": [-1, 1, 1]}',
    "text mean": '{"mean": ["a"]}',
    "two means": '{"mean": [0.1, 0.2]}',
    "NaN scale": '{"scale": NaN}',
    "unknown order": '{"channel_order": "XYZ"}',
    "unknown preset": '{"preset": "nonexistent"}',
    "unknown key": '{"evil": 1}',
    "a list": "[1, 2, 3]",
    "not JSON": "{size: 3",
    "deep nesting": "[" * 100000 + "]" * 100000,
}


def odd_output(kind: str) -> onnx.ModelProto:
    """The linear head with an output no class-score method can use as it stands."""
    weights = [numpy_helper.from_array(W, "W")]
    head = _head()
    head[-1].output[0] = "g"
    nan = numpy_helper.from_array(np.array(np.nan, np.float32), "nan")
    spec = {
        "scalar": ([helper.make_node("ReduceSum", ["g"], ["y"], keepdims=0)], [],
                   helper.make_tensor_value_info("y", TensorProto.FLOAT, [])),
        "no classes": ([helper.make_node("Slice", ["g", "s0", "s0", "s1"], ["y"])],
                       [numpy_helper.from_array(np.array([0], np.int64), "s0"),
                        numpy_helper.from_array(np.array([1], np.int64), "s1")],
                       helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 0])),
        "batch of one": ([helper.make_node("ReduceSum", ["g", "a0"], ["y"], keepdims=1)],
                         [numpy_helper.from_array(np.array([0], np.int64), "a0")],
                         helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])),
        "transposed": ([helper.make_node("Transpose", ["g"], ["y"], perm=[1, 0])], [],
                       helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, "N"])),
        "NaN logits": ([helper.make_node("Mul", ["g", "nan"], ["y"])], [nan],
                       helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])),
        "integer labels": ([helper.make_node("ArgMax", ["g"], ["y"], axis=1, keepdims=0)], [],
                           helper.make_tensor_value_info("y", TensorProto.INT64, ["N"])),
    }[kind]
    nodes, inits, out = spec
    return _model([*head, *nodes], [*weights, *inits], outputs=(out,))


def string_input() -> onnx.ModelProto:
    """A model whose input is text: nothing onnxviz can explain, and it must say so."""
    x = helper.make_tensor_value_info("text", TensorProto.STRING, [3])
    y = helper.make_tensor_value_info("y", TensorProto.STRING, [3])
    return _model([helper.make_node("Identity", ["text"], ["y"])],
                  inputs=(x,), outputs=(y,))
