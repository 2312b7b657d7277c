import ArgumentParser
import SieveCore

struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Print a blob's ops, shapes, MACs, execution plan, arena and workspace sizes, sections and provenance.")

    @Argument(help: "The .sieve blob.") var blob: String
    @Flag(help: "Print one JSON object (arena_bytes, full_macs, ops, heads, sections, labels).") var json = false

    struct OpInfo: Encodable {
        let index: Int, kind: String, input: [UInt32], output: [UInt32], macs: Int
        let kernel: [UInt32]?, stride: [UInt32]?, head: Int?
    }
    struct HeadInfo: Encodable { let index: Int, kind: String, tap: Int, ops: [Int], threshold: Float, exit_confidence: Float, macs: Int }
    struct SectionInfo: Encodable { let kind: String, offset: UInt64, size: UInt64 }
    struct Report: Encodable {
        let arena_bytes: Int, arena_unshared_bytes: Int, workspace_bytes: Int, workspace_isa: String, full_macs: Int, backbone_macs: Int, head_macs: Int
        let file_bytes: Int, classes: Int, input: [UInt32], labels: [String]
        let ops: [OpInfo], heads: [HeadInfo], plan: [String], sections: [SectionInfo], provenance: String
    }

    func run() throws {
        let file = try openBlob(blob)
        let model = file.model
        let plan = ArenaPlan(model: model)
        let execution = ExecutionPlan(model: model)
        let interpreter = try Interpreter(model: model)
        var headOf = [Int?](repeating: nil, count: model.ops.count)
        var heads: [HeadInfo] = []
        for (h, head) in model.heads.enumerated() {
            let range = Int(head.firstOp)..<Int(head.firstOp + head.opCount)
            for i in range { headOf[i] = h }
            heads.append(HeadInfo(index: h, kind: "\(head.headKind!.name)", tap: Int(head.tapTensor), ops: Array(range),
                                  threshold: head.threshold, exit_confidence: head.exitConfidence, macs: range.reduce(0) { $0 + model.macs(op: $1) }))
        }
        let ops = model.ops.enumerated().map { i, op in
            let t = model.tensors[Int(op.input0)], o = model.tensors[Int(op.output)]
            let windowed = op.opKind!.isWindowed
            return OpInfo(index: i, kind: "\(op.opKind!.name)", input: [t.h, t.w, t.c], output: [o.h, o.w, o.c],
                          macs: model.macs(op: i), kernel: windowed ? [op.kernelH, op.kernelW] : nil,
                          stride: windowed ? [op.strideH, op.strideW] : nil, head: headOf[i])
        }
        let headMACs = heads.reduce(0) { $0 + $1.macs }
        let sectionNames = model.blob.table.map { SectionInfo(kind: "\(SectionKind(rawValue: $0.kind)!.name)", offset: $0.offset, size: $0.size) }
        let input = model.inputTensor
        let report = Report(
            arena_bytes: plan.bytes, arena_unshared_bytes: plan.unsharedBytes, workspace_bytes: interpreter.workspaceBytes,
            workspace_isa: interpreter.path.name, full_macs: model.fullMACs,
            backbone_macs: model.fullMACs - headMACs, head_macs: headMACs, file_bytes: model.blob.bytes.count,
            classes: model.classCount, input: [input.h, input.w, input.c],
            labels: (0..<model.classCount).map { text(model.label($0)) },
            ops: ops, heads: heads, plan: execution.steps.map { execution.describe($0, model: model) },
            sections: sectionNames, provenance: text(model.provenance))
        if json { try printJSON(report); return }

        print("\(blob): \(grouped(report.file_bytes)) bytes, format v1, input \(shape(input)) (scale \(input.scale), zero point \(input.zeroPoint)), \(model.classCount) classes")
        print("labels: " + report.labels.joined(separator: ", "))
        print("")
        print(pad("op", 4) + pad("kind", 21) + pad("kernel", 10) + pad("input", 12) + pad("output", 12) + lpad("MACs", 12) + "  head")
        for op in ops {
            let kernel = op.kernel.map { "\($0[0])x\($0[1])/\(op.stride![0])" } ?? ""
            print(pad("\(op.index)", 4) + pad(op.kind, 21) + pad(kernel, 10) + pad(op.input.map(String.init).joined(separator: "x"), 12)
                  + pad(op.output.map(String.init).joined(separator: "x"), 12) + lpad(grouped(op.macs), 12) + (op.head.map { "  \($0)" } ?? ""))
        }
        print("")
        for head in heads {
            let threshold = head.threshold == 0 ? "0 (off)" : "\(head.threshold)" + (head.exit_confidence > 0 ? ", exit confidence \(head.exit_confidence)" : "")
            print("head \(head.index): \(head.kind), tap tensor \(head.tap) (\(shape(model.tensors[head.tap]))), ops \(head.ops.first!)-\(head.ops.last!), \(grouped(head.macs)) MACs, threshold \(threshold)")
        }
        print("MACs: \(grouped(report.full_macs)) in all (backbone and classifier \(grouped(report.backbone_macs)), heads \(grouped(headMACs)))")
        print("arena: \(grouped(plan.bytes)) bytes (\(grouped(plan.unsharedBytes)) without reuse); "
              + "the whole workspace, one allocation: \(grouped(interpreter.workspaceBytes)) bytes on \(report.workspace_isa), one thread")
        print("")
        print("execution plan (what classifying a frame does, in order):")
        for (i, step) in report.plan.enumerated() { print(pad("  \(i)", 6) + step) }
        print("")
        print("sections:")
        for s in sectionNames { print("  " + pad(s.kind, 12) + "offset " + lpad("\(s.offset)", 9) + "  size " + lpad("\(s.size)", 9)) }
        print("")
        print("provenance:")
        for line in report.provenance.split(separator: "\n") { print("  \(line)") }
    }
}

func pad(_ s: String, _ width: Int) -> String { s.count >= width ? s + " " : s + String(repeating: " ", count: width - s.count) }
func lpad(_ s: String, _ width: Int) -> String { s.count >= width ? s : String(repeating: " ", count: width - s.count) + s }
