import ArgumentParser
import Foundation
import SieveCore

/// Prints one line to stderr (errors and progress; stdout carries results).
func printError(_ text: String, newline: Bool = true) {
    FileHandle.standardError.write(Data((text + (newline ? "\n" : "")).utf8))
}

/// Prints an Encodable value as one JSON object on stdout.
func printJSON<T: Encodable>(_ value: T) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}

/// 29400000 -> "29,400,000".
func grouped(_ value: Int) -> String {
    let digits = String(value.magnitude)
    var out = ""
    for (i, ch) in digits.enumerated() {
        if i > 0 && (digits.count - i) % 3 == 0 { out += "," }
        out.append(ch)
    }
    return value < 0 ? "-" + out : out
}

func shape(_ t: TensorRecord) -> String { "\(t.h)x\(t.w)x\(t.c)" }

func text(_ bytes: UnsafeRawBufferPointer) -> String { String(decoding: bytes, as: UTF8.self) }

/// Opens a blob for a command, turning a load error into a one-line message and exit code 1.
func openBlob(_ path: String) throws -> ModelFile {
    do {
        return try ModelFile(path: path)
    } catch {
        printError("error: \(path): \(error)")
        throw ExitCode.failure
    }
}
