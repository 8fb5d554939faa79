import ArgumentParser
import RPCCore
#if canImport(Glibc)
import Glibc
#endif

@main
struct DFRPCCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dfrpc",
        abstract: "A grpcurl-style client for any gRPC server.",
        discussion: """
        Addresses are host:port, [v6]:port or unix:PATH. Types and methods come from the server's \
        reflection service, so dfrpc can call servers it was not built against, or from \
        --protoset/--proto files for servers without reflection (list and describe then need no \
        address). Plaintext HTTP/2 unless --tls, --cacert or --cert is given. Exit status: 0 on \
        success, 1 when the call failed (the status is printed to stderr), 2 on bad usage.
        """,
        subcommands: [List.self, DescribeCommand.self, Call.self])
}

/// Prints an RPC failure the way users grep for it (grpcurl's form), and exits 1.
func fail(_ error: any Error) -> ExitCode {
    if let exit = error as? ExitCode { return exit }
    var text: String
    if let rpc = error as? RPCError {
        text = "ERROR:\n  Code: \(rpc.code)\n  Message: \(rpc.message)\n"
        if let hint = hint(rpc.message) { text += "  Hint: \(hint)\n" }
    } else {
        text = "ERROR: \(error)\n"
    }
    printError(text)
    return ExitCode(1)
}

/// What to do about a connection failure whose cause OpenSSL or the transport named.
private func hint(_ message: String) -> String? {
    if message.contains("alert certificate required") {
        return "the server requires a client certificate: give --cert and --key"
    }
    if message.contains("certificate verify failed") {
        return "the server's certificate is not trusted: give the CA that signed it with --cacert"
    }
    if message.contains("alert unknown ca") || message.contains("alert bad certificate") {
        return "the server refused the client certificate (--cert): it does not trust its CA"
    }
    if message.contains("connection not ready within") {
        return "no connection within --connect-timeout (or what --max-time left); check the address, or allow more time"
    }
    return nil
}

/// Reports a usage mistake the parser could not catch, and exits 2.
func usage(_ message: String) -> ExitCode {
    printError("ERROR: \(message)\n")
    return ExitCode(2)
}

/// Writes to standard error (unbuffered, so it interleaves correctly with stdout).
func printError(_ text: String) {
    var bytes = Array(text.utf8)
    _ = write(2, &bytes, bytes.count)
}
