import Foundation
import SieveCore
import SwiftProtobuf

/// Parses an ONNX file. Anything that is not a serialized ModelProto with a graph gets
/// `QuantizeError.notONNX`, never a crash.
func readONNX(path: String) throws(QuantizeError) -> (model: Onnx_ModelProto, bytes: [UInt8]) {
    let bytes = try readFile(path)
    func fail(_ reason: String) -> QuantizeError { .notONNX(path: path, reason: reason) }
    guard !bytes.isEmpty else { throw fail("the file is empty") }
    if bytes.count >= 8 && Array(bytes[0..<8]) == Array("SIEVEBLB".utf8) { throw fail("it is a Sieve blob (quantise the ONNX model it came from)") }
    var options = BinaryDecodingOptions()
    options.discardUnknownFields = true
    var model: Onnx_ModelProto
    do {
        model = try Onnx_ModelProto(serializedBytes: bytes, options: options)
    } catch {
        throw fail("not a protobuf ModelProto (\(error))")
    }
    guard model.hasGraph, !model.graph.node.isEmpty else { throw fail("it holds no graph (no ModelProto.graph with nodes)") }
    guard model.irVersion > 0 else { throw fail("ir_version is missing") }
    var external = ExternalDataLoader(modelPath: path)
    try external.inline(&model)
    return (model, bytes)
}

/// ONNX -> `Graph`: translation, simplification and head scheduling. The folds live beside it:
/// ONNXImport+Affine (BatchNormalization, per-channel Mul/Add), +Views (Pad, ReduceMean, Squeeze,
/// Softmax at the output), +Normalisation (the input's mean/std), +ConstantFolding (shape subgraphs);
/// docs/MODEL.md says what each accepts.
struct ONNXImporter {
    let model: Onnx_ModelProto
    var graph = Graph()
    /// ONNX name -> value id, for activations.
    var valueOf: [String: Int] = [:]
    /// ONNX names of 2-D (`[1, K]`) activations: Flatten/Reshape/Gemm/MatMul outputs.
    var rank2: Set<String> = []
    /// Initializers and Constant outputs, decoded on use.
    var constants: [String: Onnx_TensorProto] = [:]
    /// Identity/Dropout/Flatten/Reshape: output -> input.
    var aliasOf: [String: String] = [:]
    /// How many nodes (alias nodes looked through) read each ONNX name; graph outputs count as readers.
    var consumers: [String: Int] = [:]
    var opset: Int64 = 0
    /// The command line's say on normalisation and labels.
    let options: InputOptions
    /// Sub/Div/Mul/Add/BatchNormalization on the graph input, folded into its normalisation.
    var inputAffine: InputAffine?
    /// Explicit Pad outputs, folded into the padding of the Conv or pool reading them.
    var pendingPads: [String: PendingPad] = [:]
    /// Channel shuffles in flight (the 5-D view between their Reshapes) and channel gathers that
    /// only Splits/Slices read (ONNXImport+Channels).
    var pendingShuffles: [String: PendingShuffle] = [:]
    var pendingGathers: [String: PendingGather] = [:]
    /// Per-channel affine layers (1x1 depthwise) made from BatchNormalization or Mul/Add by constants,
    /// which the next Conv/Gemm may absorb.
    var affineLayers: Set<Int> = []
    /// What the import did that the user should know (printed on stderr by `sieve quantize`).
    var notes: [String] = []

    init(model: Onnx_ModelProto, options: InputOptions) { self.model = model; self.options = options }

    static func importGraph(_ model: Onnx_ModelProto, options: InputOptions = InputOptions()) throws(QuantizeError) -> Graph {
        var model = model
        model.graph.node = ActivationPatterns.fused(model.graph)
        var importer = ONNXImporter(model: model, options: options)
        try importer.run()
        importer.graph.notes = importer.notes
        return importer.graph
    }

    func resolve(_ name: String) -> String {
        var n = name
        var steps = 0
        while let next = aliasOf[n], steps < 100_000 { n = next; steps += 1 }
        return n
    }

    static let aliasOps: Set<String> = ["Identity", "Dropout", "Flatten", "Reshape"]

    mutating func run() throws(QuantizeError) {
        let g = model.graph
        opset = model.opsetImport.first { $0.domain.isEmpty || $0.domain == "ai.onnx" }?.version ?? 0
        for t in g.initializer { constants[t.name] = t }

        // Readers of each name, looking through alias nodes, so fusion knows when an output has one reader.
        for node in g.node where Self.aliasOps.contains(node.opType) && !node.input.isEmpty && !node.output.isEmpty {
            aliasOf[node.output[0]] = node.input[0]
        }
        for node in g.node where !Self.aliasOps.contains(node.opType) {
            for input in node.input where !input.isEmpty { consumers[resolve(input), default: 0] += 1 }
        }
        for output in g.output { consumers[resolve(output.name), default: 0] += 1 }
        aliasOf = [:]

        try importInput(g)
        for (index, node) in g.node.enumerated() { try translate(node, index: index) }
        try importOutputsAndMetadata(g)
        try graph.schedule()
    }

    // MARK: - Graph input

    mutating func importInput(_ g: Onnx_GraphProto) throws(QuantizeError) {
        let inputs = g.input.filter { constants[$0.name] == nil }
        guard inputs.count == 1 else {
            let weightsAsInputs = inputs.count > 1 && model.graph.initializer.isEmpty ? " (weights as graph inputs: export with export_params=True, the default)" : ""
            throw .invalidModel(reason: "the graph has \(inputs.count) inputs (\(inputs.map { "'\($0.name)'" }.joined(separator: ", "))); Sieve models take one image\(weightsAsInputs)")
        }
        let input = inputs[0]
        guard input.hasType, case .tensorType(let tensorType)? = input.type.value else {
            throw .invalidModel(reason: "graph input '\(input.name)' is not a tensor")
        }
        guard tensorType.elemType == Int32(Onnx_TensorProto.DataType.float.rawValue) else {
            throw .invalidModel(reason: "graph input '\(input.name)' has element type \(tensorType.elemType), not float32")
        }
        let dims = tensorType.shape.dim
        guard tensorType.hasShape, dims.count == 4 else {
            throw .invalidModel(reason: "graph input '\(input.name)' has rank \(dims.count); Sieve needs a static [1,C,H,W] image")
        }
        var values: [Int] = []
        let given = [nil, nil, options.height, options.width]  // --input-size
        var sized = false
        for (axis, d) in dims.enumerated() {
            switch d.value {
            case .dimValue(let v)? where v > 0:
                if let size = given[axis], size != Int(v) {
                    throw .invalidModel(reason: "graph input '\(input.name)' has \(axis == 2 ? "height" : "width") \(v) in the model, not the \(size) of --input-size; leave the option out for a model exported at a fixed size")
                }
                values.append(Int(v))
            case .dimParam(let p)? where axis == 0:
                // A dynamic batch (dynamic_axes={"input": {0: "batch"}}): Sieve runs one image at a time.
                values.append(1)
                notes.append("graph input '\(input.name)' has a dynamic batch axis '\(p)': imported with batch 1, one image at a time")
            default:
                if let size = given[axis] {  // a dynamic height or width, fixed by --input-size
                    values.append(size)
                    sized = true
                    continue
                }
                let what = axis >= 2 ? "; give its size with --input-size WxH, or export with a static [1,C,H,W] shape" : "; export with a static [1,C,H,W] shape"
                if case .dimParam(let p)? = d.value {
                    throw .invalidModel(reason: "graph input '\(input.name)' has a dynamic dimension '\(p)' on axis \(axis)\(what)")
                }
                throw .invalidModel(reason: "graph input '\(input.name)' has a missing or zero dimension on axis \(axis)\(what)")
            }
        }
        if sized {
            notes.append("graph input '\(input.name)' has a dynamic height or width: imported at \(values[3])x\(values[2]) (--input-size)")
        }
        guard values[0] == 1 else { throw .invalidModel(reason: "graph input '\(input.name)' has batch size \(values[0]); Sieve needs 1") }
        guard (1...4).contains(values[1]) else {
            throw .invalidModel(reason: "graph input '\(input.name)' has \(values[1]) channels; Sieve supports 1...4")
        }
        guard values[2] <= 65535, values[3] <= 65535, (checkedProduct(values[1...]) ?? Int.max) <= 1 << 26 else {
            throw .invalidModel(reason: "graph input '\(input.name)' is \(values[1])x\(values[2])x\(values[3]); Sieve tensors hold at most 65535 pixels a side and 2^26 values")
        }
        graph.values.append(Value(name: input.name, shape: Shape(c: values[1], h: values[2], w: values[3]), producer: nil))
        graph.input = 0
        valueOf[input.name] = 0
    }

    // MARK: - Nodes

    mutating func translate(_ node: Onnx_NodeProto, index: Int) throws(QuantizeError) {
        let n = NodeView(node: node, index: index)
        guard node.domain.isEmpty || node.domain == "ai.onnx" else {
            throw .unsupportedOp(opType: "\(node.domain).\(node.opType)", node: n.name)
        }
        guard !node.output.isEmpty else { throw n.unsupported("the node has no outputs") }
        if try foldConstant(n) { return }
        switch node.opType {
        case "Identity", "Dropout":
            if node.opType == "Dropout" { try requireUnused(n, outputsFrom: 1) }
            try alias(n, from: n.input(0), to: node.output[0])
        case "Constant":
            constants[node.output[0]] = try constantNode(n)
        case "Flatten":
            let x = try activation(n, 0)
            let axis = try n.int("axis", 1)
            if rank2.contains(n.input(0)) {
                guard axis == 1 || axis == 0 || axis == -1 else { throw n.badAttribute("axis", "flattening a [1,K] tensor on axis \(axis)") }
            } else {
                guard axis == 1 || axis == -3 || axis == 0 else {
                    throw n.badAttribute("axis", "axis \(axis): only flattening everything after the batch axis is supported")
                }
            }
            _ = x
            try alias(n, from: n.input(0), to: node.output[0])
            rank2.insert(node.output[0])
        case "Reshape":
            try reshape(n)
        case "Conv":
            try conv(n)
        case "BatchNormalization":
            try batchNorm(n)
        case "Relu":
            try clampOrLUT(n, min: 0, max: .infinity)
        case "Clip":
            try clip(n)
        case "Gemm":
            try gemm(n)
        case "MatMul":
            try matMul(n)
        case "Add":
            if try foldIntoInput(n) { return }
            if try constantArithmetic(n) { return }
            try add(n)
        case "Sub", "Mul", "Div":
            if try foldIntoInput(n) { return }
            if try constantArithmetic(n) { return }
            // Two activations (squeeze-excitation, x * sigmoid(x)): the MUL op or one table.
            if node.opType == "Mul" { try mul(n); return }
            throw .unsupportedOp(opType: node.opType, node: n.name, advice: unsupportedOpAdvice(node.opType))
        case "MaxPool", "AveragePool":
            try pool(n)
        case "Concat":
            try concat(n)
        case "Sigmoid", "HardSigmoid", "HardSwish", "LeakyRelu", "PRelu", "Elu", "Selu", "Celu", "Tanh", "Gelu", "Softplus", "Mish":
            try activationTable(n)
        case "GlobalAveragePool":
            let x = try activation(n, 0)
            try addLayer(n, .globalAveragePool, inputs: [x], shape: Shape(c: graph.values[x].shape.c, h: 1, w: 1))
        case "ReduceMean", "ReduceMax", "ReduceSum":
            try reduceOverPixels(n)
        case "Pad":
            try pad(n)
        case "Squeeze":
            try squeeze(n)
        case "Unsqueeze":
            try unsqueeze(n)
        case "Softmax", "LogSoftmax":
            try softmax(n)
        case "Transpose":
            try transposeChannelGroups(n)
        case "Split":
            try splitChannels(n)
        case "Slice":
            try sliceChannels(n)
        default:
            throw .unsupportedOp(opType: node.opType, node: n.name, advice: unsupportedOpAdvice(node.opType))
        }
    }

    mutating func alias(_ n: NodeView, from input: String, to output: String) throws(QuantizeError) {
        if let v = valueOf[input] {
            valueOf[output] = v
            if rank2.contains(input) { rank2.insert(output) }
        } else if let c = constants[input] {
            constants[output] = c
        } else {
            throw n.unsupported("input '\(input)' is neither an activation nor a constant")
        }
        aliasOf[output] = input
    }

    func requireUnused(_ n: NodeView, outputsFrom first: Int) throws(QuantizeError) {
        for output in n.node.output.dropFirst(first) where !output.isEmpty && (consumers[output] ?? 0) > 0 {
            throw n.unsupported("its extra output '\(output)' is used; only the first output is supported")
        }
    }

    /// The value id of input `i`, which must be an activation (not a constant).
    func activation(_ n: NodeView, _ i: Int) throws(QuantizeError) -> Int {
        let name = n.input(i)
        guard !name.isEmpty else { throw n.unsupported("input \(i) is missing") }
        if pendingShuffles[name] != nil {
            throw n.unsupported("it reads '\(name)', a 5-D view of channel groups; only a channel shuffle (Reshape to "
                                + "[1, g, C/g, H, W], Transpose [0, 2, 1, 3, 4], Reshape back) is supported")
        }
        if pendingGathers[name] != nil {
            throw n.unsupported("it reads '\(name)', a channel shuffle that only Split/Slice may read")
        }
        if pendingPads[name] != nil {
            throw n.unsupported("it reads the output of an explicit Pad ('\(name)'); a Pad is only supported right before a Conv or MaxPool, whose padding it becomes")
        }
        guard let v = valueOf[name] else {
            if constants[name] != nil { throw n.unsupported("input \(i) ('\(name)') is a constant; Sieve needs an activation here") }
            throw .invalidModel(reason: "node '\(n.name)' reads '\(name)', which no earlier node writes (nodes must be in topological order)")
        }
        return v
    }

    @discardableResult
    mutating func addLayer(_ n: NodeView, _ kind: LayerKind, inputs: [Int], shape: Shape, output named: String? = nil) throws(QuantizeError) -> Int {
        guard shape.c >= 1, shape.h >= 1, shape.w >= 1, shape.c <= 65535, shape.h <= 65535, shape.w <= 65535, shape.count <= 1 << 26 else {
            throw n.unsupported("its output shape \(shape) is outside what Sieve tensors hold")
        }
        if named == nil { try requireUnused(n, outputsFrom: 1) }
        let output = named ?? n.node.output[0]
        let v = graph.values.count
        graph.values.append(Value(name: output, shape: shape, producer: graph.layers.count))
        graph.layers.append(Layer(node: n.name, opType: n.node.opType, kind: kind, inputs: inputs, output: v, order: n.index))
        valueOf[output] = v
        return graph.layers.count - 1
    }

    // MARK: Constants

    func constantNode(_ n: NodeView) throws(QuantizeError) -> Onnx_TensorProto {
        guard let a = n.node.attribute.first else { throw n.unsupported("Constant without a value") }
        guard let t = ONNXImporter.constantTensor(a) else {
            throw n.badAttribute(a.name, "Constant attributes other than value, value_float(s), value_int(s) are not supported")
        }
        return t
    }

    /// The tensor a Constant node's attribute holds, or nil for attributes Sieve does not read.
    static func constantTensor(_ a: Onnx_AttributeProto) -> Onnx_TensorProto? {
        var t = Onnx_TensorProto()
        switch a.name {
        case "value": return a.t
        case "value_float": t.dataType = Int32(Onnx_TensorProto.DataType.float.rawValue); t.floatData = [a.f]
        case "value_floats": t.dataType = Int32(Onnx_TensorProto.DataType.float.rawValue); t.floatData = a.floats; t.dims = [Int64(a.floats.count)]
        case "value_int": t.dataType = Int32(Onnx_TensorProto.DataType.int64.rawValue); t.int64Data = [a.i]
        case "value_ints": t.dataType = Int32(Onnx_TensorProto.DataType.int64.rawValue); t.int64Data = a.ints; t.dims = [Int64(a.ints.count)]
        default: return nil
        }
        return t
    }

    /// A float constant input (initializer or Constant output) with its dims.
    func floats(_ n: NodeView, _ i: Int, role: String) throws(QuantizeError) -> (dims: [Int], data: [Float]) {
        let name = n.input(i)
        guard !name.isEmpty else { throw n.unsupported("the \(role) input is missing") }
        guard let t = constants[name] else {
            if valueOf[name] != nil { throw n.unsupported("the \(role) ('\(name)') is computed by the graph; Sieve needs a constant initializer") }
            throw .invalidModel(reason: "node '\(n.name)' reads '\(name)', which no earlier node writes")
        }
        return try ONNXImporter.decodeFloats(t, name: name)
    }

    func int64s(_ n: NodeView, _ i: Int, role: String) throws(QuantizeError) -> [Int64] {
        let name = n.input(i)
        guard let t = constants[name] else { throw n.unsupported("the \(role) ('\(name)') must be a constant initializer") }
        return try decodeInt64s(t, name: name)
    }

    static func decodeFloats(_ t: Onnx_TensorProto, name: String) throws(QuantizeError) -> (dims: [Int], data: [Float]) {
        guard t.dataLocation != .external else {
            throw .invalidModel(reason: "initializer '\(name)' is stored in an external file; save the model with all tensors inside it")
        }
        let dims = t.dims.map { Int($0) }
        guard dims.allSatisfy({ $0 >= 0 && $0 <= 1 << 28 }) else { throw .invalidModel(reason: "initializer '\(name)' has invalid dims \(dims)") }
        guard let count = checkedProduct(dims), count <= 1 << 28 else {
            throw .invalidModel(reason: "initializer '\(name)' has dims \(dims), above the 2^28 values an initializer may hold")
        }
        var data: [Float]
        switch Onnx_TensorProto.DataType(rawValue: Int(t.dataType)) {
        case .float?:
            if !t.rawData.isEmpty {
                guard t.rawData.count == count * 4 else {
                    throw .invalidModel(reason: "initializer '\(name)' holds \(t.rawData.count) raw bytes, its dims \(dims) need \(count * 4)")
                }
                data = [Float](repeating: 0, count: count)
                data.withUnsafeMutableBytes { dst in t.rawData.withUnsafeBytes { src in dst.copyMemory(from: src) } }
                #if _endian(big)
                data = data.map { Float(bitPattern: $0.bitPattern.byteSwapped) }
                #endif
            } else {
                data = t.floatData
            }
        case .double?:
            if !t.rawData.isEmpty {
                guard t.rawData.count == count * 8 else { throw .invalidModel(reason: "initializer '\(name)' has \(t.rawData.count) raw bytes for dims \(dims)") }
                var d = [Double](repeating: 0, count: count)
                d.withUnsafeMutableBytes { dst in t.rawData.withUnsafeBytes { src in dst.copyMemory(from: src) } }
                data = d.map { Float($0) }
            } else {
                data = t.doubleData.map { Float($0) }
            }
        default:
            throw .invalidModel(reason: "initializer '\(name)' has data type \(t.dataType); float32 is needed here")
        }
        guard data.count == count else { throw .invalidModel(reason: "initializer '\(name)' holds \(data.count) values, its dims \(dims) need \(count)") }
        guard data.allSatisfy({ $0.isFinite }) else { throw .invalidModel(reason: "initializer '\(name)' holds NaN or infinite values") }
        return (dims, data)
    }

    func decodeInt64s(_ t: Onnx_TensorProto, name: String) throws(QuantizeError) -> [Int64] {
        guard t.dims.allSatisfy({ $0 >= 0 }), let product = checkedProduct(t.dims.map { Int($0) }), product <= 1 << 28 else {
            throw .invalidModel(reason: "initializer '\(name)' has dims \(t.dims), above the 2^28 values an initializer may hold")
        }
        let count = Int64(product)
        let values: [Int64]
        switch Onnx_TensorProto.DataType(rawValue: Int(t.dataType)) {
        case .int64?:
            if !t.rawData.isEmpty {
                guard Int64(t.rawData.count) == count * 8 else { throw .invalidModel(reason: "initializer '\(name)' has \(t.rawData.count) raw bytes for dims \(t.dims)") }
                var d = [Int64](repeating: 0, count: Int(count))
                d.withUnsafeMutableBytes { dst in t.rawData.withUnsafeBytes { src in dst.copyMemory(from: src) } }
                values = d
            } else {
                values = t.int64Data
            }
        case .int32?:
            if !t.rawData.isEmpty {
                guard Int64(t.rawData.count) == count * 4 else { throw .invalidModel(reason: "initializer '\(name)' has \(t.rawData.count) raw bytes for dims \(t.dims)") }
                var d = [Int32](repeating: 0, count: Int(count))
                d.withUnsafeMutableBytes { dst in t.rawData.withUnsafeBytes { src in dst.copyMemory(from: src) } }
                values = d.map { Int64($0) }
            } else {
                values = t.int32Data.map { Int64($0) }
            }
        default:
            throw .invalidModel(reason: "initializer '\(name)' has data type \(t.dataType); int64 is needed here")
        }
        guard values.count == count else { throw .invalidModel(reason: "initializer '\(name)' holds \(values.count) values, its dims \(t.dims) need \(count)") }
        return values
    }

    // MARK: Reshape

    mutating func reshape(_ n: NodeView) throws(QuantizeError) {
        if pendingShuffles[n.input(0)] != nil { return try finishShuffle(n) }
        let x = try activation(n, 0)
        let shape = graph.values[x].shape
        let target = try int64s(n, 1, role: "shape").map { Int($0) }
        let allowZero = try n.int("allowzero", 0)
        let inputDims = rank2.contains(n.input(0)) ? [1, shape.count] : [1, shape.c, shape.h, shape.w]
        var dims = target
        for i in dims.indices where dims[i] == 0 && allowZero == 0 {
            guard i < inputDims.count else { throw n.unsupported("shape \(target) copies a dimension the input does not have") }
            dims[i] = inputDims[i]
        }
        guard dims.allSatisfy({ $0 >= -1 }), dims.filter({ $0 == -1 }).count <= 1 else {
            throw n.unsupported("shape \(target) has a negative dimension other than a single -1")
        }
        if let minus = dims.firstIndex(of: -1) {
            let known = checkedProduct(dims.enumerated().filter { $0.offset != minus }.map { $0.element }) ?? 0
            guard known > 0, shape.count % known == 0 else { throw n.unsupported("shape \(target) does not fit the input \(inputDims)") }
            dims[minus] = shape.count / known
        }
        if dims == [1, shape.count] {
            try alias(n, from: n.input(0), to: n.node.output[0])
            rank2.insert(n.node.output[0])
        } else if dims == [shape.count] {
            try alias(n, from: n.input(0), to: n.node.output[0])
            rank2.insert(n.node.output[0])
        } else if dims == [1, shape.c, shape.h, shape.w] {
            try alias(n, from: n.input(0), to: n.node.output[0])
            rank2.remove(n.node.output[0])
        } else if dims.count == 5 && dims[0] == 1 && checkedProduct(dims[1...2]) == shape.c && dims[3] == shape.h && dims[4] == shape.w
                    && !rank2.contains(n.input(0)) {
            try startShuffle(n, x, dims: dims)
        } else {
            throw n.unsupported("reshaping \(inputDims) to \(target): only flattening to [1, K] (or a no-op) is supported; networks that reshape activations into tokens or groups (attention blocks: MobileViT, EfficientViT, ViT; GroupNorm) do not run on Sieve")
        }
    }

    // MARK: Conv, BatchNormalization

    mutating func conv(_ n: NodeView) throws(QuantizeError) {
        var (x, extra, _) = try paddedInput(n)
        let inShape = graph.values[x].shape
        var (wDims, weights) = try floats(n, 1, role: "weights")
        guard wDims.count == 4 else { throw n.unsupported("weights of rank \(wDims.count): only 2-D convolutions are supported") }
        if let ks = try n.ints("kernel_shape"), ks != [wDims[2], wDims[3]] { throw n.badAttribute("kernel_shape", "\(ks) differs from the weights' \([wDims[2], wDims[3]])") }
        if let d = try n.ints("dilations"), d != [1, 1] { (wDims, weights) = try undilated(n, wDims, weights, dilations: d) }
        let (cout, cinPerGroup, kh, kw) = (wDims[0], wDims[1], wDims[2], wDims[3])
        let groups = try n.int("group", 1)
        guard groups >= 1, cinPerGroup * groups == inShape.c, cout % groups == 0 else {
            throw n.badAttribute("group", "group \(groups) does not fit \(inShape.c) input channels and weights \(wDims)")
        }
        let strides = try n.ints("strides") ?? [1, 1]
        guard strides.count == 2 else { throw n.badAttribute("strides", "\(strides) is not two values") }
        var pads = try resolvePads(n, input: inShape, kh: kh, kw: kw, sh: strides[0], sw: strides[1])
        try addExplicitPads(n, &pads, extra, kh: kh, kw: kw)
        var bias = [Float](repeating: 0, count: cout)
        if n.node.input.count > 2 && !n.input(2).isEmpty {
            let (bDims, b) = try floats(n, 2, role: "bias")
            guard b.count == cout else { throw n.unsupported("bias has dims \(bDims), expected [\(cout)]") }
            bias = b
        }
        let outH = (inShape.h + pads.top + pads.bottom - kh) / strides[0] + 1
        let outW = (inShape.w + pads.left + pads.right - kw) / strides[1] + 1
        guard inShape.h + pads.top + pads.bottom >= kh, inShape.w + pads.left + pads.right >= kw else {
            throw n.unsupported("the kernel \(kh)x\(kw) is larger than the padded input \(inShape)")
        }
        var p = ConvParams(weights: weights, bias: bias, cout: cout, cinPerGroup: cinPerGroup, kh: kh, kw: kw,
                           strideH: strides[0], strideW: strides[1], padTop: pads.top, padLeft: pads.left,
                           padBottom: pads.bottom, padRight: pads.right, groups: groups)
        // A per-channel affine right before, with no padding to tell real zeros from padded ones, folds in exactly.
        if pads.top + pads.left + pads.bottom + pads.right == 0, let a = absorbableAffine(x, name: n.input(0)) {
            foldForward(&p, scale: a.scale, shift: a.shift)
            x = dropAbsorbedAffine(a.layer)
        }
        try addLayer(n, .conv(p), inputs: [x], shape: Shape(c: cout, h: outH, w: outW))
    }

    /// A dilated kernel as the dense kernel it samples: taps `d` apart with zeros between them. The
    /// products are the same and the zeros add nothing, so the conv is exact; it costs the dense
    /// kernel's multiply-accumulates (a 3x3 kernel at dilation 2 is 5x5: 25/9 of them), said in a note.
    mutating func undilated(_ n: NodeView, _ dims: [Int], _ w: [Float], dilations d: [Int]) throws(QuantizeError) -> ([Int], [Float]) {
        guard d.count == 2, d.allSatisfy({ (1...64).contains($0) }) else { throw n.badAttribute("dilations", "\(d) is not two values in 1...64") }
        let (kh, kw) = (dims[2], dims[3])
        let (dh, dw) = ((kh - 1) * d[0] + 1, (kw - 1) * d[1] + 1)
        guard dh <= 64, dw <= 64 else {
            throw n.badAttribute("dilations", "\(d): the \(kh)x\(kw) kernel spans \(dh)x\(dw) at this dilation; Sieve kernels are at most 64x64")
        }
        var dense = [Float](repeating: 0, count: dims[0] * dims[1] * dh * dw)
        for plane in 0..<(dims[0] * dims[1]) {
            for y in 0..<kh {
                for x in 0..<kw { dense[(plane * dh + y * d[0]) * dw + x * d[1]] = w[(plane * kh + y) * kw + x] }
            }
        }
        let ratio = Double(dh * dw) / Double(kh * kw)
        notes.append("conv '\(n.name)' has dilation \(d): imported as the dense \(dh)x\(dw) kernel it samples (zeros between the \(kh)x\(kw) taps): exact, at \(String(format: "%.1f", ratio)) times the multiply-accumulates")
        return ([dims[0], dims[1], dh, dw], dense)
    }

    /// Explicit pads [top, left, bottom, right] from `pads` ([x1_begin, x2_begin, x1_end, x2_end]) or `auto_pad`,
    /// checked against the format's limits (kernel and stride 1...64, each pad below the kernel).
    func resolvePads(_ n: NodeView, input: Shape, kh: Int, kw: Int, sh: Int, sw: Int) throws(QuantizeError)
        -> (top: Int, left: Int, bottom: Int, right: Int) {
        guard (1...64).contains(kh), (1...64).contains(kw) else { throw n.badAttribute("kernel_shape", "\([kh, kw]): Sieve kernels are 1...64") }
        guard (1...64).contains(sh), (1...64).contains(sw) else { throw n.badAttribute("strides", "\([sh, sw]): Sieve strides are 1...64") }
        let autoPad = try n.string("auto_pad") ?? "NOTSET"
        var p: [Int]
        switch autoPad {
        case "NOTSET", "":
            p = try n.ints("pads") ?? [0, 0, 0, 0]
            guard p.count == 4, p.allSatisfy({ $0 >= 0 }) else { throw n.badAttribute("pads", "\(p) is not four non-negative values") }
        case "VALID":
            p = [0, 0, 0, 0]
        case "SAME_UPPER", "SAME_LOWER":
            func split(_ size: Int, _ k: Int, _ s: Int) -> (Int, Int) {
                let out = (size + s - 1) / s
                let total = max((out - 1) * s + k - size, 0)
                return autoPad == "SAME_UPPER" ? (total / 2, total - total / 2) : (total - total / 2, total / 2)
            }
            let (t, b) = split(input.h, kh, sh), (l, r) = split(input.w, kw, sw)
            p = [t, l, b, r]
        default:
            throw n.badAttribute("auto_pad", "'\(autoPad)' is not NOTSET, SAME_UPPER, SAME_LOWER or VALID")
        }
        guard p[0] < kh, p[2] < kh, p[1] < kw, p[3] < kw else {
            throw n.badAttribute(autoPad == "NOTSET" || autoPad.isEmpty ? "pads" : "auto_pad", "padding \(p) must be smaller than the kernel \([kh, kw])")
        }
        return (p[0], p[1], p[2], p[3])
    }

    /// Adds an explicit Pad's padding to a Conv's or pool's own, within the format's limit (each pad below the kernel).
    func addExplicitPads(_ n: NodeView, _ pads: inout (top: Int, left: Int, bottom: Int, right: Int), _ extra: [Int], kh: Int, kw: Int) throws(QuantizeError) {
        guard extra != [0, 0, 0, 0] else { return }
        pads = (pads.top + extra[0], pads.left + extra[1], pads.bottom + extra[2], pads.right + extra[3])
        guard pads.top < kh, pads.bottom < kh, pads.left < kw, pads.right < kw else {
            throw n.unsupported("with the explicit Pad before it folded in, its padding \([pads.top, pads.left, pads.bottom, pads.right]) is not smaller than the kernel \([kh, kw])")
        }
    }

    /// The layer writing input 0, if that output is read by this node alone and is not a graph output.
    func soleProducer(_ n: NodeView) throws(QuantizeError) -> Int? {
        let x = try activation(n, 0)
        guard let layer = graph.values[x].producer, consumers[resolve(n.input(0))] == 1 else { return nil }
        return layer
    }

    mutating func renameOutput(of layer: Int, to n: NodeView) {
        let v = graph.layers[layer].output
        graph.values[v].name = n.node.output[0]
        valueOf[n.node.output[0]] = v
        if rank2.contains(n.input(0)) { rank2.insert(n.node.output[0]) }
    }

    // MARK: ReLU, Clip

    mutating func clip(_ n: NodeView) throws(QuantizeError) {
        var lo = -Float.infinity, hi = Float.infinity
        if n.node.input.count > 1 {
            for (i, isMin) in [(1, true), (2, false)] where n.node.input.count > i && !n.input(i).isEmpty {
                let (_, v) = try floats(n, i, role: isMin ? "min" : "max")
                guard v.count == 1 else { throw n.unsupported("Clip \(isMin ? "min" : "max") must be a scalar") }
                if isMin { lo = v[0] } else { hi = v[0] }
            }
        } else {
            if n.attribute("min") != nil { lo = try n.float("min", -.infinity) }
            if n.attribute("max") != nil { hi = try n.float("max", .infinity) }
        }
        guard lo <= hi else { throw n.unsupported("Clip min \(lo) is above max \(hi)") }
        try clampOrLUT(n, min: lo, max: hi)
    }

    mutating func fuseClamp(_ n: NodeView, min lo: Float, max hi: Float) throws(QuantizeError) {
        guard let l = try soleProducer(n) else {
            throw n.unsupported("\(n.node.opType) must follow a Conv, Gemm, MatMul or Add whose output nothing else reads")
        }
        switch graph.layers[l].kind {
        case .conv, .fullyConnected, .add, .mul: break
        default: throw n.unsupported("\(n.node.opType) must follow a Conv, Gemm, MatMul or Add, not \(graph.layers[l].opType)")
        }
        graph.layers[l].clampMin = Swift.max(graph.layers[l].clampMin, lo)
        graph.layers[l].clampMax = Swift.min(graph.layers[l].clampMax, hi)
        guard graph.layers[l].clampMin <= graph.layers[l].clampMax else { throw n.unsupported("the clamps fused here leave an empty range") }
        renameOutput(of: l, to: n)
    }

    // MARK: Gemm, MatMul, Add

    mutating func gemm(_ n: NodeView) throws(QuantizeError) {
        let x = try activation(n, 0)
        let k = graph.values[x].shape.count
        if try n.int("transA", 0) != 0 { throw n.badAttribute("transA", "1: only transA = 0 is supported") }
        let alpha = try n.float("alpha", 1), beta = try n.float("beta", 1)
        guard alpha == 1 else { throw n.badAttribute("alpha", "\(alpha): only 1 is supported") }
        guard beta == 1 else { throw n.badAttribute("beta", "\(beta): only 1 is supported") }
        let transB = try n.int("transB", 0)
        guard transB == 0 || transB == 1 else { throw n.badAttribute("transB", "\(transB) is not 0 or 1") }
        let (bDims, b) = try floats(n, 1, role: "weights")
        guard bDims.count == 2 else { throw n.unsupported("weights of rank \(bDims.count), expected 2") }
        let cout = transB == 1 ? bDims[0] : bDims[1]
        let bk = transB == 1 ? bDims[1] : bDims[0]
        guard bk == k else { throw n.unsupported("weights \(bDims) (transB \(transB)) do not fit an input of \(k) values") }
        let weights = transB == 1 ? b : transpose(b, rows: k, cols: cout)
        var bias = [Float](repeating: 0, count: cout)
        if n.node.input.count > 2 && !n.input(2).isEmpty {
            let (cDims, c) = try floats(n, 2, role: "bias")
            if c.count == cout { bias = c } else if c.count == 1 { bias = [Float](repeating: c[0], count: cout) } else {
                throw n.unsupported("bias dims \(cDims) do not broadcast to [1, \(cout)]")
            }
        }
        try addFullyConnected(n, FCParams(weights: weights, bias: bias, cout: cout, k: k), input: x)
    }

    mutating func matMul(_ n: NodeView) throws(QuantizeError) {
        let x = try activation(n, 0)
        guard rank2.contains(n.input(0)) else {
            throw n.unsupported("MatMul is only supported on a [1, K] input (Flatten first)")
        }
        let k = graph.values[x].shape.count
        let (bDims, b) = try floats(n, 1, role: "weights")
        guard bDims.count == 2, bDims[0] == k else { throw n.unsupported("weights \(bDims) do not fit an input of \(k) values") }
        let cout = bDims[1]
        let fc = FCParams(weights: transpose(b, rows: k, cols: cout), bias: [Float](repeating: 0, count: cout), cout: cout, k: k)
        try addFullyConnected(n, fc, input: x)
    }

    /// A FULLY_CONNECTED layer, absorbing a per-channel affine (BatchNormalization...) right before it.
    mutating func addFullyConnected(_ n: NodeView, _ fc: FCParams, input: Int) throws(QuantizeError) {
        var p = fc, x = input
        if let a = absorbableAffine(x, name: n.input(0)) {
            let s = graph.values[x].shape
            foldForward(&p, scale: a.scale, shift: a.shift, plane: s.h * s.w)
            x = dropAbsorbedAffine(a.layer)
        }
        try addLayer(n, .fullyConnected(p), inputs: [x], shape: Shape(c: p.cout, h: 1, w: 1))
        rank2.insert(n.node.output[0])
    }

    mutating func add(_ n: NodeView) throws(QuantizeError) {
        guard n.node.input.count == 2 else { throw n.unsupported("Add needs two inputs") }
        let a = n.input(0), b = n.input(1)
        if let va = valueOf[a], let vb = valueOf[b] {
            let sa = graph.values[va].shape, sb = graph.values[vb].shape
            guard sa == sb else {
                throw n.unsupported("inputs of shapes \(sa) and \(sb): adding two activations needs equal shapes (a constant may broadcast per channel)")
            }
            try addLayer(n, .add, inputs: [va, vb], shape: sa)
            if rank2.contains(a) { rank2.insert(n.node.output[0]) }
            return
        }
        if valueOf[a] == nil || valueOf[b] == nil {
            throw n.unsupported("adding a constant of this shape is not supported: a scalar or per-channel [1,C,1,1] constant is")
        }
        throw n.unsupported("Add reads '\(a)' and '\(b)', which are not both activations")
    }

    // MARK: Pools

    mutating func pool(_ n: NodeView) throws(QuantizeError) {
        let (x, extra, fromPad) = try paddedInput(n)
        let inShape = graph.values[x].shape
        let isMax = n.node.opType == "MaxPool"
        guard let ks = try n.ints("kernel_shape"), ks.count == 2 else { throw n.badAttribute("kernel_shape", "a 2-D kernel_shape is required") }
        if let d = try n.ints("dilations"), d.contains(where: { $0 != 1 }) { throw n.badAttribute("dilations", "\(d): only dilation 1 is supported") }
        if try n.int("storage_order", 0) != 0 { throw n.badAttribute("storage_order", "only 0 is supported") }
        let strides = try n.ints("strides") ?? [1, 1]
        guard strides.count == 2 else { throw n.badAttribute("strides", "\(strides) is not two values") }
        var pads = try resolvePads(n, input: inShape, kh: ks[0], kw: ks[1], sh: strides[0], sw: strides[1])
        let ownPadding = pads.top + pads.left + pads.bottom + pads.right > 0
        var countIncludePad = n.node.opType == "AveragePool" ? try n.int("count_include_pad", 0) != 0 : false
        if fromPad {
            // Sieve's pools skip padded positions; zero padding before a max pool is the same only on values >= 0.
            // Before an average pool with no padding of its own, the zeros count: as count_include_pad.
            if !isMax && (!ownPadding || countIncludePad) {
                countIncludePad = true
            } else {
                guard isMax, isNonNegative(x) else {
                    throw n.unsupported("an explicit zero Pad before \(isMax ? "a MaxPool of values that may be negative" : "an AveragePool with padding of its own") does not fold: remove the Pad or use the pool's own padding")
                }
            }
            try addExplicitPads(n, &pads, extra, kh: ks[0], kw: ks[1])
        }
        let paddedH = inShape.h + pads.top + pads.bottom, paddedW = inShape.w + pads.left + pads.right
        guard paddedH >= ks[0], paddedW >= ks[1] else { throw n.unsupported("the kernel \(ks) is larger than the padded input \(inShape)") }
        var outH = (paddedH - ks[0]) / strides[0] + 1, outW = (paddedW - ks[1]) / strides[1] + 1
        if try n.int("ceil_mode", 0) != 0 {
            // The extra windows of ceil mode as extra end padding; a window starting in the padding is dropped (ONNX, PyTorch).
            func ceilOut(_ size: Int, _ begin: Int, _ padded: Int, _ k: Int, _ s: Int) -> Int {
                var out = (padded - k + s - 1) / s + 1
                if (out - 1) * s >= size + begin { out -= 1 }
                return out
            }
            let ceilH = ceilOut(inShape.h, pads.top, paddedH, ks[0], strides[0]), ceilW = ceilOut(inShape.w, pads.left, paddedW, ks[1], strides[1])
            if ceilH != outH || ceilW != outW {
                guard !countIncludePad else {
                    if fromPad {
                        throw n.badAttribute("ceil_mode", "1 after an explicit Pad (whose zeros count in the average) changes the divisor of the extra windows; export with ceil_mode=False, or pad in the pool itself with count_include_pad=False")
                    }
                    throw n.badAttribute("ceil_mode", "1 with count_include_pad 1 changes the divisor of the extra windows; export with ceil_mode=False or count_include_pad=False")
                }
                pads.bottom += (ceilH - 1) * strides[0] + ks[0] - paddedH
                pads.right += (ceilW - 1) * strides[1] + ks[1] - paddedW
                guard pads.bottom < ks[0], pads.right < ks[1] else {
                    throw n.badAttribute("ceil_mode", "1 needs end padding \([pads.bottom, pads.right]) not smaller than the kernel \(ks)")
                }
                outH = ceilH; outW = ceilW
            }
        }
        // Every window must keep a real position, or the pool would read nothing.
        guard (outH - 1) * strides[0] - pads.top < inShape.h, (outW - 1) * strides[1] - pads.left < inShape.w,
              ks[0] - pads.top > 0, ks[1] - pads.left > 0 else {
            throw n.unsupported("a window lies entirely in the padding")
        }
        let p = PoolParams(kh: ks[0], kw: ks[1], strideH: strides[0], strideW: strides[1],
                           padTop: pads.top, padLeft: pads.left, padBottom: pads.bottom, padRight: pads.right)
        if !isMax {
            let hasPadding = pads.top + pads.left + pads.bottom + pads.right > 0
            if countIncludePad && hasPadding {
                // Padded positions count as zeros (PyTorch's default): a depthwise conv whose weights are
                // all 1 / (kh kw), exact in int8 (each weight quantises to 127), padded taps at the zero point.
                let taps = ks[0] * ks[1], c = inShape.c
                let conv = ConvParams(weights: [Float](repeating: 1 / Float(taps), count: c * taps), bias: [Float](repeating: 0, count: c),
                                      cout: c, cinPerGroup: 1, kh: ks[0], kw: ks[1], strideH: strides[0], strideW: strides[1],
                                      padTop: pads.top, padLeft: pads.left, padBottom: pads.bottom, padRight: pads.right, groups: c)
                try addLayer(n, .conv(conv), inputs: [x], shape: Shape(c: c, h: outH, w: outW))
                return
            }
            try addLayer(n, .averagePool(p), inputs: [x], shape: Shape(c: inShape.c, h: outH, w: outW))
        } else {
            try addLayer(n, .maxPool(p), inputs: [x], shape: Shape(c: inShape.c, h: outH, w: outW))
        }
    }

    // MARK: - Outputs and metadata

    mutating func importOutputsAndMetadata(_ g: Onnx_GraphProto) throws(QuantizeError) {
        let outputs = g.output.map { $0.name }
        guard !outputs.isEmpty else { throw .invalidModel(reason: "the graph has no outputs") }
        var meta: [String: String] = [:]
        for entry in model.metadataProps { meta[entry.key] = entry.value }

        func value(_ name: String, role: String) throws(QuantizeError) -> Int {
            guard let v = valueOf[name] else { throw .invalidModel(reason: "\(role) '\(name)' is not computed from the graph input") }
            guard graph.values[v].producer != nil else { throw .invalidModel(reason: "\(role) '\(name)' is the graph input itself") }
            return v
        }
        let finalName = meta["sieve.final_output"] ?? outputs[0]
        guard outputs.contains(finalName) else {
            throw .invalidMetadata(key: "sieve.final_output", reason: "'\(finalName)' is not a graph output (outputs: \(outputs.joined(separator: ", ")))")
        }
        graph.final = try value(finalName, role: "final output")
        let finalShape = graph.values[graph.final].shape
        guard finalShape.h == 1 && finalShape.w == 1 else {
            throw .invalidModel(reason: "final output '\(finalName)' is \(finalShape) (CxHxW); Sieve needs class logits of 1x1xK")
        }
        let classes = finalShape.c
        guard (2...1000).contains(classes) else { throw .invalidModel(reason: "final output '\(finalName)' has \(classes) classes; Sieve supports 2...1000") }

        var headList: [(String, HeadKindName)] = []
        if let text = meta["sieve.heads"] {
            guard let list = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [[String: Any]] else {
                throw .invalidMetadata(key: "sieve.heads", reason: "not a JSON list of {\"output\", \"kind\"} objects")
            }
            for item in list {
                guard let output = item["output"] as? String, let kindText = item["kind"] as? String else {
                    throw .invalidMetadata(key: "sieve.heads", reason: "an entry lacks a string 'output' or 'kind'")
                }
                guard let kind = HeadKindName(rawValue: kindText) else {
                    throw .invalidMetadata(key: "sieve.heads", reason: "kind '\(kindText)' is not exclusion or confidence")
                }
                guard outputs.contains(output), output != finalName else {
                    throw .invalidMetadata(key: "sieve.heads", reason: "'\(output)' is not a graph output other than the final one")
                }
                headList.append((output, kind))
            }
        } else {
            // Other outputs of the final logits' shape are exclusion heads; any other output (a model
            // that also returns its features) is no head and is left out, with a note.
            for name in outputs where name != finalName {
                if let v = valueOf[name], graph.values[v].producer != nil, graph.values[v].shape == finalShape {
                    headList.append((name, .exclusion))
                } else {
                    let what: String
                    if let v = valueOf[name] {
                        what = graph.values[v].producer == nil ? "is the input image itself" : "is \(graph.values[v].shape) (CxHxW)"
                    } else {
                        what = "is not computed from the image"
                    }
                    notes.append("graph output '\(name)' \(what), not the \(classes) class logits: not an exit head, left out (sieve.heads names heads explicitly)")
                }
            }
        }
        guard headList.count <= 64 else { throw .invalidModel(reason: "\(headList.count) heads; Sieve supports up to 64") }
        for (name, kind) in headList {
            let v = try value(name, role: "head output")
            let s = graph.values[v].shape
            guard s.h == 1 && s.w == 1 && s.c == classes else {
                throw .invalidModel(reason: "head output '\(name)' is \(s) (CxHxW); heads need 1x1x\(classes) logits like the final output")
            }
            graph.heads.append(HeadSpec(kind: kind, output: v))
        }

        if let text = meta["sieve.labels"] {
            guard let labels = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String] else {
                throw .invalidMetadata(key: "sieve.labels", reason: "not a JSON list of strings")
            }
            guard labels.count == classes || options.labels != nil else {
                throw .invalidMetadata(key: "sieve.labels", reason: "\(labels.count) labels for \(classes) classes")
            }
            try checkLabels(labels, source: "sieve.labels")
            graph.labels = labels
        } else {
            graph.labels = (0..<classes).map { String($0) }
        }
        if let text = meta["sieve.pixel_scale"] {
            let parts = text.split(separator: "/").map { Double($0.trimmingCharacters(in: .whitespaces)) }
            var scale: Double?
            if parts.count == 1 { scale = parts[0] } else if parts.count == 2, let a = parts[0], let b = parts[1], b != 0 { scale = a / b }
            guard let s = scale, s.isFinite, s > 0 else { throw .invalidMetadata(key: "sieve.pixel_scale", reason: "'\(text)' is not a positive number or fraction") }
            graph.pixelScale = Float(s)
        }
        try resolveNormalisation(meta, classes: classes)
    }
}

func transpose(_ m: [Float], rows: Int, cols: Int) -> [Float] {
    var out = [Float](repeating: 0, count: m.count)
    for r in 0..<rows { for c in 0..<cols { out[c * rows + r] = m[r * cols + c] } }
    return out
}

/// A node with attribute accessors whose errors name the node.
struct NodeView {
    let node: Onnx_NodeProto
    let index: Int
    var inputOverride: String?

    var name: String { node.name.isEmpty ? "\(node.opType)#\(index)" : node.name }

    func input(_ i: Int) -> String {
        if i == 0, let o = inputOverride { return o }
        return i < node.input.count ? node.input[i] : ""
    }

    func attribute(_ name: String) -> Onnx_AttributeProto? { node.attribute.first { $0.name == name } }

    func unsupported(_ reason: String) -> QuantizeError { .unsupportedNode(opType: node.opType, node: name, reason: reason) }
    func badAttribute(_ attribute: String, _ reason: String) -> QuantizeError {
        .unsupportedAttribute(opType: node.opType, node: name, attribute: attribute, reason: reason)
    }

    func int(_ name: String, _ d: Int) throws(QuantizeError) -> Int {
        guard let a = attribute(name) else { return d }
        guard a.type == .int || a.type == .undefined else { throw badAttribute(name, "expected an integer") }
        guard a.i >= Int64(Int32.min) && a.i <= Int64(Int32.max) else { throw badAttribute(name, "\(a.i) is out of range") }
        return Int(a.i)
    }

    func float(_ name: String, _ d: Float) throws(QuantizeError) -> Float {
        guard let a = attribute(name) else { return d }
        guard a.type == .float || a.type == .undefined else { throw badAttribute(name, "expected a float") }
        return a.f
    }

    func ints(_ name: String) throws(QuantizeError) -> [Int]? {
        guard let a = attribute(name) else { return nil }
        guard a.type == .ints || a.type == .undefined else { throw badAttribute(name, "expected a list of integers") }
        guard a.ints.allSatisfy({ $0 >= Int64(Int32.min) && $0 <= Int64(Int32.max) }) else { throw badAttribute(name, "\(a.ints) is out of range") }
        return a.ints.map { Int($0) }
    }

    func string(_ name: String) throws(QuantizeError) -> String? {
        guard let a = attribute(name) else { return nil }
        guard a.type == .string || a.type == .undefined else { throw badAttribute(name, "expected a string") }
        return String(decoding: a.s, as: UTF8.self)
    }
}

/// The product of dimensions read from a file, or nil when it overflows Int (or a factor is negative).
func checkedProduct<C: Collection>(_ dims: C) -> Int? where C.Element == Int {
    var product = 1
    for d in dims {
        guard d >= 0 else { return nil }
        let (p, overflow) = product.multipliedReportingOverflow(by: d)
        if overflow { return nil }
        product = p
    }
    return product
}
