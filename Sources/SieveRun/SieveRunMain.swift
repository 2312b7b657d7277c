import CSieveKernels
import SieveCore

/// The frame loop of sieve-run and `sieve run`: read a frame, preprocess it, classify it, print
/// one JSON line; a summary on stderr at the end. Everything is allocated before the first frame.
public enum SieveRunMain {
    /// Runs with the command line's words (without the program name); returns the exit code.
    public static func run(_ words: [String]) -> Int32 {
        // Before any file is opened: a closed fd 0, 1 or 2 must not be taken by the model, the
        // frames or the stop pipe.
        let closed = sieve_open_standard_fds()
        do throws(RunError) {
            let options = try RunOptions.parse(words)
            if options.help { writeText(1, RunOptions.usage + "\n"); return 0 }
            if closed & 2 != 0 { throw .output(reason: "stdout is closed") }
            return try run(options)
        } catch {
            writeText(2, "error: " + error.message + "\n")
            return error.exitCode
        }
    }

    static func run(_ options: RunOptions) throws(RunError) -> Int32 {
        let file: ModelFile
        do { file = try ModelFile(path: options.model) } catch { throw .model(path: options.model, error: error) }
        let interpreter: Interpreter
        do { interpreter = try Interpreter(model: file.model, maxArenaBytes: options.maxArena, threads: options.threads) } catch {
            throw .model(path: options.model, error: error)
        }
        let preprocessor = try Preprocessor(options: options, interpreter: interpreter)
        let frameBytes = Int(sieve_frame_bytes(options.format, options.width, options.height, options.stride))
        sieve_install_signal_handlers()
        let source = try FrameSource(path: options.input, frameBytes: frameBytes, latest: options.latest)
        let model = file.model
        let summary = RunSummary(heads: model.heads.count)
        let line = LineBuffer(capacity: 4096 + model.classCount * (options.logits ? 24 : 8) + Int(model.blob.section(.labels).count))
        let input = interpreter.input.baseAddress!
        var taken = 0
        var writeError: Int32 = 0

        loop: while true {
            switch source.next() {
            case .end: break loop
            case let .frame(frame, index):
                taken += 1
                // --every counts frames read (in latest mode, frames taken).
                if (options.latest ? taken - 1 : index) % options.every != 0 { summary.skipped += 1; continue }
                let start = sieve_now_ns()
                preprocessor.run(frame: frame, into: input)
                let result = interpreter.classify(exits: options.exits)
                let elapsed = sieve_now_ns() - start
                summary.record(exitHead: result.exitHead, nanoseconds: elapsed)
                writeFrameLine(line, index: index, result: result, model: model, survivors: interpreter.survivors,
                               logits: options.logits ? interpreter.finalLogits : nil, ns: elapsed)
                let status = line.write(to: 1)
                if status != 0 {
                    writeError = -status
                    break loop
                }
            }
        }
        if writeError == sieve_errno_pipe() { return 0 }  // the reader went away (head, a closed pipe): end quietly
        let counts = source.counts
        summary.framesRead = counts.read
        summary.dropped = counts.dropped
        summary.partialBytes = counts.partialBytes
        summary.frameBytes = frameBytes
        summary.kernels = interpreter.path.name
        summary.threads = options.threads
        summary.write(into: line)
        _ = line.write(to: 2)
        if writeError != 0 {  // a full disk, a closed stdout, an I/O error: the answers did not arrive
            writeText(2, "error: " + RunError.output(reason: String(cString: sieve_error_text(writeError))).message + "\n")
            return 1
        }
        if source.errorNumber != 0 && sieve_stop_signal() == 0 {
            writeText(2, "error: reading frames from \(options.input): " + String(cString: sieve_error_text(source.errorNumber)) + "\n")
            return 1
        }
        return 0
    }

    /// {"frame":N,"class":C,"label":"...","exit":H or "final","survivors":[...],"macs":M,"us":T},
    /// with "logits":[...] before "us" when asked for.
    static func writeFrameLine(_ line: LineBuffer, index: Int, result: Classification, model: Model,
                               survivors: UnsafeBufferPointer<UInt8>, logits: UnsafeBufferPointer<Float>?, ns: UInt64) {
        line.clear()
        line.append("{\"frame\":"); line.append(index)
        line.append(",\"class\":"); line.append(result.answer)
        line.append(",\"label\":\""); line.append(jsonEscaping: model.label(result.answer)); line.append("\"")
        line.append(",\"exit\":")
        if result.exitHead < 0 { line.append("\"final\"") } else { line.append(result.exitHead) }
        line.append(",\"survivors\":[")
        var first = true
        for c in 0..<survivors.count where survivors[c] != 0 {
            if !first { line.append(UInt8(ascii: ",")) }
            line.append(c)
            first = false
        }
        line.append("],\"macs\":"); line.append(result.macs)
        if let logits {
            line.append(",\"logits\":[")
            line.append(logits)
            line.append(UInt8(ascii: "]"))
        }
        line.append(",\"us\":"); line.append(microsecondsFromNanoseconds: ns)
        line.append("}\n")
    }

    static func writeText(_ fd: Int32, _ text: String) {
        var copy = text
        copy.withUTF8 { _ = sieve_write_all(fd, $0.baseAddress, $0.count) }
    }
}
