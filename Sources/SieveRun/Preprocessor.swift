import CSieveKernels
import SieveCore

/// A camera frame to the model's int8 input, in fixed point (docs/FRAMES.md): crop, resize, colour,
/// and the model's 256-entry input table per channel with --invert folded in. Set up once.
public final class Preprocessor {
    private var spec: sieve_frame_spec
    private let table: UnsafeMutablePointer<Int8>
    private let scratch: UnsafeMutableRawPointer

    /// For a model: its input size and channels, and its input table (Interpreter.inputTable).
    public convenience init(options: RunOptions, interpreter: Interpreter) throws(RunError) {
        let input = interpreter.model.inputTensor
        try self.init(options: options, inputTable: interpreter.inputTable, width: Int32(input.w), height: Int32(input.h),
                      channels: Int32(interpreter.model.info.inputChannels))
    }

    public init(options: RunOptions, inputTable: [Int8], width: Int32, height: Int32, channels: Int32) throws(RunError) {
        guard channels == 1 || channels == 3 else {
            throw .frame("the model takes \(channels) input channels; sieve-run feeds 1 (luma) or 3 (RGB)")
        }
        let name = String(cString: sieve_format_name(options.format))
        let frameBytes = sieve_frame_bytes(options.format, options.width, options.height, options.stride)
        guard frameBytes != -2 else {
            throw .frame("a \(options.width)x\(options.height) \(name) frame"
                         + (options.stride > 0 ? " with stride \(options.stride)" : "")
                         + " is 2 GB or more; sieve-run takes frames up to 2^31 - 1 bytes")
        }
        guard frameBytes > 0 else {
            throw .frame("a \(options.width)x\(options.height) \(name) frame"
                         + (options.stride > 0 ? " with stride \(options.stride)" : "")
                         + " cannot work (4:2:0 needs even sizes, YUYV an even width, the stride at least one row)")
        }
        let crop = options.crop ?? Preprocessor.centredCrop(frameWidth: options.width, frameHeight: options.height,
                                                            modelWidth: width, modelHeight: height)
        // In 64 bits: each value is below 2^31, so their sums cannot overflow.
        guard Int64(crop.x) + Int64(crop.w) <= Int64(options.width), Int64(crop.y) + Int64(crop.h) <= Int64(options.height) else {
            throw .frame("the crop \(crop.w)x\(crop.h) at \(crop.x),\(crop.y) does not fit in the \(options.width)x\(options.height) frame")
        }
        let table = UnsafeMutablePointer<Int8>.allocate(capacity: Int(channels) * 256)
        let source = inputTable
        for c in 0..<Int(channels) {
            for v in 0..<256 { table[c * 256 + v] = source[c * 256 + (options.invert ? 255 - v : v)] }
        }
        self.table = table
        spec = sieve_frame_spec(format: options.format, width: options.width, height: options.height, stride: options.stride,
                                crop_x: crop.x, crop_y: crop.y, crop_w: crop.w, crop_h: crop.h,
                                out_w: width, out_h: height, channels: channels,
                                full_range: options.fullRange ? 1 : 0, table: UnsafePointer(table))
        let bytes = sieve_preprocess_scratch_size(&spec)
        guard let scratch = sieve_alloc_aligned(bytes, 64) else { table.deallocate(); throw .outOfMemory(bytes: bytes) }
        self.scratch = scratch
        sieve_preprocess_init(&spec, scratch)
    }

    /// The default crop: the largest centred region with the model's aspect ratio, so the resize
    /// never stretches the picture (the centred square for a square model, the whole frame when the
    /// shapes match). Its other side is rounded to the nearest pixel, at least 1.
    public static func centredCrop(frameWidth: Int32, frameHeight: Int32, modelWidth: Int32, modelHeight: Int32)
        -> (x: Int32, y: Int32, w: Int32, h: Int32) {
        let fw = Int64(frameWidth), fh = Int64(frameHeight), mw = Int64(modelWidth), mh = Int64(modelHeight)
        var w = fw, h = fh
        if fw * mh >= fh * mw {
            w = max(1, min(fw, (fh * mw + mh / 2) / mh))  // the frame is wider than the model: full height
        } else {
            h = max(1, min(fh, (fw * mh + mw / 2) / mw))  // taller: full width
        }
        return (Int32((fw - w) / 2), Int32((fh - h) / 2), Int32(w), Int32(h))
    }

    deinit {
        sieve_free_aligned(scratch)
        table.deallocate()
    }

    /// One frame (sieve_frame_bytes long) into the model's input; allocates nothing.
    public func run(frame: UnsafePointer<UInt8>, into input: UnsafeMutablePointer<Int8>) {
        sieve_preprocess(&spec, scratch, frame, input)
    }
}
