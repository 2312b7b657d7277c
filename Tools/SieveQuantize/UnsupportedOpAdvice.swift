/// One line on what to do about an op the importer does not translate, for the ops classifiers
/// exported from PyTorch commonly carry. Empty when there is nothing better to say.
func unsupportedOpAdvice(_ opType: String) -> String {
    switch opType {
    case "Resize", "Upsample":
        return "\(opType) is not supported; classifiers do not need it: remove it and export at the input size you will run"
    case "Transpose":
        return "Transpose of activations is not supported outside a channel shuffle (Reshape, Transpose [0, 2, 1, 3, 4], Reshape); networks that permute to channels-last or tokens (ConvNeXt, Swin, ViT) do not run on Sieve: export an NCHW convolutional model without it"
    case "Gather", "GatherElements", "GatherND":
        return "\(opType) of activations is not supported: index with constants before export, or remove it"
    case "LSTM", "GRU", "RNN", "Loop", "Scan", "If":
        return "\(opType) is not supported: Sieve runs feed-forward convolutional classifiers"
    case "Softmax", "LogSoftmax":
        return "drop the \(opType): Sieve reads logits (it is dropped automatically when it is the last op on the class logits)"
    case "Erf":
        return "Erf is supported only inside GELU as the legacy exporter writes it (x * (Erf(x / sqrt 2) + 1) * 0.5); export with the default exporter (one Gelu op), or use another activation"
    case "ThresholdedRelu", "Softsign", "Shrink", "HardMax":
        return "this activation is not supported: use ReLU, ReLU6, LeakyReLU, ELU, GELU, SiLU, Mish, Tanh, Sigmoid, HardSigmoid or HardSwish"
    case "Div", "Sub":
        return "\(opType) is supported only by a per-channel constant (or on the graph input, as normalisation)"
    case "ConvTranspose":
        return "ConvTranspose is not supported; classifiers do not need it"
    case "QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul", "ConvInteger", "MatMulInteger":
        return "the model is already quantised: give sieve the float model it came from"
    case "Where", "Greater":
        return "a Greater and a Where are supported only in the Softplus threshold the default exporter writes, Where(beta x > t, x, Softplus(beta x) / beta); \(opType) on activations otherwise (dynamic shapes) is not: export with a static [1,C,H,W] input"
    case "Shape", "Expand", "Tile", "Range", "NonZero", "Equal", "Less":
        return "\(opType) on activations (dynamic shapes) is not supported: export with a static [1,C,H,W] input"
    case "LayerNormalization", "InstanceNormalization", "GroupNormalization":
        return "\(opType) normalises each image by its own statistics at run time, which int8's fixed scales cannot follow: deploy a network with BatchNorm (folded into its convs) instead"
    case "Cast":
        return "casting activations is not supported: export a float32 model"
    default:
        return ""
    }
}
