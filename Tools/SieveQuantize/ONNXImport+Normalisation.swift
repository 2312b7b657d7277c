import Foundation

/// The model input's normalisation: `(pixel * pixelScale - mean) / std` per channel, from the
/// command-line options, else the `sieve.*` metadata, composed with any Sub/Div/Mul/Add by
/// constants (or BatchNormalization) that the graph applies to its input first. A model that says
/// nothing about it is refused: a silent pixel/255 quietly ruins accuracy.
extension ONNXImporter {
    /// Per-channel `y = scale * x + offset` folded from the graph's own ops on its input.
    struct InputAffine {
        var scale: [Double]
        var offset: [Double]
    }

    /// True when `n` (Sub/Div/Mul/Add by a per-channel constant) reads the graph input, which
    /// nothing else reads, and was folded into the input normalisation.
    mutating func foldIntoInput(_ n: NodeView) throws(QuantizeError) -> Bool {
        guard n.node.input.count == 2 else { return false }
        let activationIndex = valueOf[n.input(0)] != nil ? 0 : 1
        let name = n.input(activationIndex)
        guard valueOf[name] == graph.input, consumers[resolve(name)] == 1, constants[n.input(1 - activationIndex)] != nil else { return false }
        let channels = graph.inputShape.c
        guard let c = try perChannelConstant(n, 1 - activationIndex, channels: channels) else { return false }
        let op = n.node.opType
        // Constant on the left: c - x and c / x; only c - x is affine.
        if activationIndex == 1 && op == "Div" { return false }
        var a = [Double](repeating: 1, count: channels), b = [Double](repeating: 0, count: channels)
        for ch in 0..<channels {
            let v = Double(c[ch])
            switch op {
            case "Sub": if activationIndex == 0 { b[ch] = -v } else { a[ch] = -1; b[ch] = v }
            case "Add": b[ch] = v
            case "Mul": a[ch] = v
            case "Div":
                guard v != 0 else { throw n.unsupported("dividing the input by zero (channel \(ch))") }
                a[ch] = 1 / v
            default: return false
            }
        }
        return try composeInput(n, scale: a, offset: b)
    }

    /// BatchNormalization straight on the graph input: part of the input normalisation.
    mutating func foldBatchNormIntoInput(_ n: NodeView, scale: [Double], shift: [Double]) throws(QuantizeError) -> Bool {
        guard valueOf[n.input(0)] == graph.input, consumers[resolve(n.input(0))] == 1 else { return false }
        return try composeInput(n, scale: scale, offset: shift)
    }

    /// False (nothing changed) when the result would not be a positive finite scale per channel,
    /// which a std cannot express: the op then becomes an ordinary per-channel affine layer.
    private mutating func composeInput(_ n: NodeView, scale a: [Double], offset b: [Double]) throws(QuantizeError) -> Bool {
        var affine = inputAffine ?? InputAffine(scale: [Double](repeating: 1, count: a.count), offset: [Double](repeating: 0, count: a.count))
        for ch in a.indices {
            affine.scale[ch] *= a[ch]
            affine.offset[ch] = affine.offset[ch] * a[ch] + b[ch]
            guard affine.scale[ch] > 0, affine.scale[ch].isFinite, affine.offset[ch].isFinite else { return false }
        }
        inputAffine = affine
        valueOf[n.node.output[0]] = graph.input
        aliasOf[n.node.output[0]] = n.input(0)
        notes.append("folded \(n.node.opType) '\(n.name)' on the graph input into the input normalisation")
        return true
    }

    /// A constant input that broadcasts per channel against [1, C, H, W]: a scalar, [C], [C,1,1] or [1,C,1,1].
    /// Nil when it has another shape.
    func perChannelConstant(_ n: NodeView, _ i: Int, channels: Int) throws(QuantizeError) -> [Float]? {
        let (dims, data) = try floats(n, i, role: "constant")
        if data.count == 1 { return [Float](repeating: data[0], count: channels) }
        let padded = [Int](repeating: 1, count: max(0, 4 - dims.count)) + dims
        // [C] broadcasts against W, not C: only per-channel when the rest are 1 (or it is [1, C] on a flat tensor).
        guard padded.count == 4, padded[0] == 1, padded[1] == channels, padded[2] == 1, padded[3] == 1 else { return nil }
        return data
    }

    /// graph.mean/std/pixelScale/labels from the options, the metadata and the in-graph normalisation.
    mutating func resolveNormalisation(_ meta: [String: String], classes: Int) throws(QuantizeError) {
        let channels = graph.inputShape.c
        let hasMeta = meta["sieve.input_mean"] != nil || meta["sieve.input_std"] != nil
        var mean: [Float], std: [Float]
        if options.declaresNormalisation {
            mean = try broadcastOption(options.mean ?? [0], "--mean", channels: channels)
            std = try broadcastOption(options.std ?? [1], "--std", channels: channels)
            guard std.allSatisfy({ $0 > 0 && $0.isFinite }), mean.allSatisfy({ $0.isFinite }) else {
                throw .invalidModel(reason: "--std values must be positive and --mean values finite")
            }
            if hasMeta { notes.append("--mean/--std/--norm override the model's sieve.input_mean/sieve.input_std metadata") }
            if meta["sieve.pixel_scale"] != nil { notes.append("--mean/--std/--norm are in 0..1 pixel units: the model's sieve.pixel_scale is ignored") }
            graph.pixelScale = 1.0 / 255.0
        } else if hasMeta {
            mean = try perChannel(meta, "sieve.input_mean", channels: channels, default: 0)
            std = try perChannel(meta, "sieve.input_std", channels: channels, default: 1)
            guard std.allSatisfy({ $0 > 0 }) else { throw .invalidMetadata(key: "sieve.input_std", reason: "every std must be positive") }
        } else if inputAffine != nil {
            // The graph normalises its own input, exported the torchvision way from 0..1 pixels.
            mean = [Float](repeating: 0, count: channels)
            std = [Float](repeating: 1, count: channels)
            graph.pixelScale = 1.0 / 255.0
        } else {
            throw .invalidModel(reason: "the model does not say how its input is normalised (no sieve.input_mean/sieve.input_std metadata, no Sub/Div on the input): pass --norm imagenet, --mean R,G,B --std R,G,B (0..1 pixel units), or --norm none for input = pixel/255")
        }
        if let affine = inputAffine {
            // y = a * (p*s - m) / d + b = (p*s - (m - b*d/a)) / (d/a)
            for ch in 0..<channels {
                let a = affine.scale[ch], b = affine.offset[ch]
                let d = Double(std[ch]), m = Double(mean[ch])
                std[ch] = Float(d / a)
                mean[ch] = Float(m - b * d / a)
            }
            guard std.allSatisfy({ $0 > 0 && $0.isFinite }), mean.allSatisfy({ $0.isFinite }) else {
                throw .invalidModel(reason: "the input normalisation folded from the graph gives mean \(mean), std \(std)")
            }
        }
        graph.mean = mean
        graph.std = std
        if let labels = options.labels {
            guard labels.count == classes else {
                throw .invalidModel(reason: "--labels gives \(labels.count) labels; the model has \(classes) classes")
            }
            if meta["sieve.labels"] != nil { notes.append("--labels overrides the model's sieve.labels metadata") }
            try checkLabels(labels, source: "--labels")
            graph.labels = labels
        }
    }

    private func broadcastOption(_ values: [Float], _ option: String, channels: Int) throws(QuantizeError) -> [Float] {
        if values.count == channels { return values }
        if values.count == 1 { return [Float](repeating: values[0], count: channels) }
        throw .invalidModel(reason: "\(option) gives \(values.count) values; the model's input has \(channels) channels (give \(channels) values or one)")
    }

    func perChannel(_ meta: [String: String], _ key: String, channels: Int, default d: Float) throws(QuantizeError) -> [Float] {
        guard let text = meta[key] else { return [Float](repeating: d, count: channels) }
        guard let list = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [NSNumber] else {
            throw .invalidMetadata(key: key, reason: "not a JSON list of numbers")
        }
        let values = list.map { $0.floatValue }
        guard values.allSatisfy({ $0.isFinite }) else { throw .invalidMetadata(key: key, reason: "values must be finite") }
        if values.count == channels { return values }
        if values.count == 1 { return [Float](repeating: values[0], count: channels) }
        throw .invalidMetadata(key: key, reason: "\(values.count) values for \(channels) input channels")
    }

    /// Labels go into the blob's LABELS section and into JSON output: 1...255 bytes, no control characters, quotes or backslashes.
    func checkLabels(_ labels: [String], source: String) throws(QuantizeError) {
        func fail(_ reason: String) -> QuantizeError {
            source.hasPrefix("--") ? .invalidModel(reason: "\(source): \(reason)") : .invalidMetadata(key: source, reason: reason)
        }
        for (i, label) in labels.enumerated() {
            let bytes = Array(label.utf8)
            guard (1...255).contains(bytes.count) else { throw fail("label \(i) is not 1...255 bytes long") }
            guard !bytes.contains(where: { $0 < 0x20 || $0 == 0x7F || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) else {
                throw fail("label \(i) '\(sanitized(label))' contains a control character (shown as ?), quote or backslash")
            }
        }
    }
}
