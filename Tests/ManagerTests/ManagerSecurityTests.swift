import DragonflyCommon
import Foundation
import SQLStore
import Testing
@testable import ManagerCore

@Suite struct SignInThrottleTests {
    let t0 = ContinuousClock.now

    @Test func aFloodOfMadeUpNamesDoesNotFreeALockedOne() async {
        let throttle = SignInThrottle(capacity: 100)
        for i in 0..<5 { await throttle.failed(name: "victim", client: "10.0.0.1", now: t0 + .milliseconds(i)) }
        #expect(await throttle.refusal(name: "victim", client: "10.9.9.9", now: t0 + .seconds(1)) != nil)
        // 10,000 names from 2,000 addresses, each address under its own limit: the table
        // fills and is trimmed many times over.
        for n in 0..<10_000 {
            await throttle.failed(name: "made-up-\(n)", client: "10.1.\(n / 5 / 250).\(n / 5 % 250)", now: t0 + .seconds(2))
        }
        #expect(await throttle.trackedNames <= 100)
        #expect(await throttle.refusal(name: "victim", client: "10.9.9.9", now: t0 + .seconds(3)) == .name(seconds: 57))
        // And it is free once its window has passed.
        #expect(await throttle.refusal(name: "victim", client: "10.9.9.9", now: t0 + .seconds(61)) == nil)
    }

    @Test func aTableOfLockedNamesRecordsNoMoreButKeepsThemAll() async {
        let throttle = SignInThrottle(perName: .init(count: 2, window: .seconds(60)), perClient: .init(count: 1000, window: .seconds(60)),
                                      capacity: 10)
        for n in 0..<10 {
            for _ in 0..<2 { await throttle.failed(name: "locked-\(n)", client: "c", now: t0) }
        }
        for n in 0..<50 { await throttle.failed(name: "new-\(n)", client: "c", now: t0) }
        for n in 0..<10 { #expect(await throttle.refusal(name: "locked-\(n)", client: "d", now: t0) != nil) }
        #expect(await throttle.trackedNames == 10)
    }

    @Test func oneAddressIsStoppedWhateverNamesItTries() async {
        let throttle = SignInThrottle()
        for n in 0..<20 { await throttle.failed(name: "guess-\(n)", client: "10.0.0.7", now: t0) }
        #expect(await throttle.refusal(name: "anything", client: "10.0.0.7", now: t0) == .client(seconds: 60))
        #expect(await throttle.refusal(name: "anything", client: "10.0.0.8", now: t0) == nil)
        // Signing in to an account of one's own does not reset the address.
        await throttle.succeeded(name: "mine")
        #expect(await throttle.refusal(name: "mine", client: "10.0.0.7", now: t0) != nil)
    }
}

@Suite struct CredentialMaskingTests {
    @Test func credentialNames() {
        for name in ["Authorization", "proxy-authorization", "Cookie", "Set-Cookie", "X-Api-Key", "x-auth-token", "client_secret",
                     "password", "PrivateKey", "X-Amz-Security-Token"] {
            #expect(LogRedaction.isCredentialName(name), "\(name)")
        }
        for name in ["url", "urls", "type", "headers", "Accept", "scope", "piece_length", "tag", "platform"] {
            #expect(!LogRedaction.isCredentialName(name), "\(name)")
        }
    }

    @Test func signedURLsKeepTheirShape() {
        let url = "https://b.s3.amazonaws.com/o?X-Amz-Algorithm=AWS4&X-Amz-Credential=AKIA%2F1&X-Amz-Signature=abc&X-Amz-Security-Token=t&v=1#f"
        #expect(LogRedaction.maskingCredentials(inURL: url)
            == "https://b.s3.amazonaws.com/o?X-Amz-Algorithm=AWS4&X-Amz-Credential=******&X-Amz-Signature=******&X-Amz-Security-Token=******&v=1#f")
        #expect(LogRedaction.maskingCredentials(inURL: "https://u:pw@h/p?X-Goog-Signature=s&Signature=z&sig=q")
            == "https://******@h/p?X-Goog-Signature=******&Signature=******&sig=******")
        // A token as the user name, and a parameter name hidden by percent-encoding.
        #expect(LogRedaction.maskingCredentials(inURL: "https://ghp_token@h/p?%73ig=q&X%2DAmz%2DSignature=r")
            == "https://******@h/p?%73ig=******&X%2DAmz%2DSignature=******")
        #expect(LogRedaction.maskingCredentials(inURL: "http://h/plain") == "http://h/plain")
        #expect(LogRedaction.maskingCredentials(inURL: "no url? at all") == "no url? at all")
    }

    @Test func jobArgumentsAndResults() throws {
        let args = JSONValue(text: """
            {"url":"http://o/x?Signature=S1&a=b","headers":{"Cookie":"S2","X-Api-Key":"S3","Authorization":"S4","X-Trace":"keep"},
             "nested":[{"client_secret":"S5","token":{"inner":"S6"}}],"password":null}
            """)
        let masked = args.maskingSecrets().text
        for secret in ["S1", "S2", "S3", "S4", "S5", "S6"] { #expect(!masked.contains("\"\(secret)"), "\(secret) in \(masked)") }
        #expect(!masked.contains("=S1"))
        #expect(masked.contains("keep") && masked.contains("a=b") && masked.contains("\"password\":null"))
    }
}

@Suite struct AccountSecurityTests {
    @Test func signUpFieldsAreBounded() async throws {
        let store = try await temporaryStore()
        let huge = String(repeating: "a", count: 1 << 20) + "@example.com"
        for (name, password, email) in [("u1", "password-1", huge), ("u2", "password-1", String(repeating: "a", count: 243) + "@example.com"),
                                        ("u3", String(repeating: "p", count: 1025), ""), ("u\u{7}", "password-1", "")] {
            await #expect(throws: ManagerError.self) { try await store.createUser(name: name, password: password, email: email, role: .guest) }
        }
        _ = try await store.createUser(name: "ok", password: "password-1", email: String(repeating: "a", count: 242) + "@example.com", role: .guest)
    }

    @Test func unknownNamesCostAHashToo() async throws {
        let store = try await temporaryStore()
        let clock = ContinuousClock()
        var known: [Duration] = [], unknown: [Duration] = []
        for i in 0..<5 {
            known.append(try await clock.measure { _ = try await store.authenticate(name: "root", password: "wrong-\(i)") })
            unknown.append(try await clock.measure { _ = try await store.authenticate(name: "nobody-\(i)", password: "wrong") })
        }
        func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18 }
        // The fastest of each: other tests running in parallel only ever add time, so the
        // minimum is the cost of the work itself. Skipping the hash would make it ~100 x less.
        let ratio = seconds(known.min() ?? .zero) / seconds(unknown.min() ?? .seconds(1))
        #expect(ratio < 3 && ratio > 1.0 / 3, "known \(known), unknown \(unknown)")
    }

    @Test func signedOutTokensStayRevokedAcrossAReopen() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("manager-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let path = dir.appendingPathComponent("manager.db").path
        let signer = JWTSigner(key: "k")
        let store = ManagerStore(db: try SQLiteDatabase(path: path))
        _ = try await store.prepare(rootPassword: "rootpassword")
        let root = try await store.user(1)
        let (a, _) = signer.sign(root)
        let (b, _) = signer.sign(root)
        let claimsA = try #require(signer.verify(a)), claimsB = try #require(signer.verify(b))
        #expect(claimsA.tokenID != claimsB.tokenID)
        try await store.revokeSession(claimsA)
        try await store.revokeSession(claimsA)
        let reopened = ManagerStore(db: try SQLiteDatabase(path: path))
        _ = try await reopened.prepare(rootPassword: nil)
        #expect(try await reopened.isRevoked(claimsA))
        #expect(try await !reopened.isRevoked(claimsB))
    }

    @Test func theStoreFileIsOwnerOnly() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("manager-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let path = dir.appendingPathComponent("manager.db").path
        FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o644])
        _ = try SQLiteDatabase(path: path)
        let fresh = dir.appendingPathComponent("fresh.db").path
        _ = try SQLiteDatabase(path: fresh)
        for p in [path, fresh] {
            let mode = try #require(try FileManager.default.attributesOfItem(atPath: p)[.posixPermissions] as? Int)
            #expect(mode & 0o777 == 0o600, "\(p): \(String(mode, radix: 8))")
        }
    }
}
