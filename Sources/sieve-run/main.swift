// sieve-run: the device program. Camera frames in on stdin (or a file or FIFO), one JSON line
// per classified frame out. Embedded-Swift clean: the arguments come from the C shim (Embedded
// Swift has no CommandLine) and the exit code goes back through it.
import CSieveKernels
import SieveRun

var words: [String] = []
var i: Int32 = 1
while i < sieve_argc() {
    if let word = sieve_argv(i) { words.append(String(cString: word)) }
    i += 1
}
sieve_exit(SieveRunMain.run(words))
