import Foundation
import SQLStore
import DragonflyCommon
import Testing
@testable import ManagerCore

func temporaryStore() async throws -> ManagerStore {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("manager-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    let store = ManagerStore(db: try SQLiteDatabase(path: dir.appendingPathComponent("manager.db").path))
    _ = try await store.prepare(rootPassword: "rootpassword")
    return store
}

@Suite struct ManagerStoreTests {
    @Test func freshStoreHasDefaultClustersAndRoot() async throws {
        let store = try await temporaryStore()
        let (clusters, total) = try await store.schedulerClusters(page: 1, perPage: 10)
        #expect(total == 1 && clusters.first?.is_default == true && clusters.first?.name == "cluster-1")
        #expect(try await store.authenticate(name: "root", password: "rootpassword")?.role == "root")
        #expect(try await store.authenticate(name: "root", password: "wrong-password") == nil)
        // Preparing again changes nothing and generates no second root.
        #expect(try await store.prepare(rootPassword: nil) == nil)
        #expect(try await store.users(page: 1, perPage: 10).1 == 1)
    }

    @Test func schedulerUpsertKeepAliveAndExpiry() async throws {
        let store = try await temporaryStore()
        var input = SchedulerInput()
        input.hostname = "s1"
        input.ip = "10.0.0.5"
        input.port = 65002
        input.scheduler_cluster_id = 1
        let first = try await store.upsertScheduler(input)
        input.port = 65012
        let again = try await store.upsertScheduler(input)
        #expect(first.id == again.id && again.port == 65012 && again.state == "inactive")
        #expect(try await store.setState(.scheduler, hostname: "s1", ip: "10.0.0.5", clusterID: 1, active: true))
        #expect(try await store.activeSchedulers(clusterID: 1).map(\.id) == [first.id])
        #expect(try await store.expireKeepAlives(olderThan: 3600) == 0)
        #expect(try await store.expireKeepAlives(olderThan: -10) == 1)
        #expect(try await store.activeSchedulers(clusterID: 1).isEmpty)
        input.scheduler_cluster_id = 99
        await #expect(throws: ManagerError.self) { try await store.upsertScheduler(input) }
    }

    @Test func clusterCrudAndConflicts() async throws {
        let store = try await temporaryStore()
        var input = SchedulerClusterInput()
        input.name = "east"
        input.scopes = ClusterScopes(idc: "idc-a", cidrs: ["10.1.0.0/16"])
        let east = try await store.createSchedulerCluster(input)
        await #expect(throws: ManagerError.self) { try await store.createSchedulerCluster(input) }
        input.scopes = ClusterScopes(cidrs: ["not-a-cidr"])
        await #expect(throws: ManagerError.self) { try await store.createSchedulerCluster(input) }
        var patch = SchedulerClusterInput()
        patch.bio = "eastern"
        #expect(try await store.updateSchedulerCluster(east.id, patch).bio == "eastern")
        try await store.deleteSchedulerCluster(east.id)
        await #expect(throws: ManagerError.self) { try await store.schedulerCluster(east.id) }
    }

    @Test func tokensAreHashedScopedAndExpire() async throws {
        let store = try await temporaryStore()
        let root = try #require(try await store.authenticate(name: "root", password: "rootpassword"))
        let token = try await store.createToken(userID: root.id, name: "ci", bio: "", scopes: ["job"],
                                                expiresAt: Date().addingTimeInterval(3600))
        let secret = try #require(token.token)
        #expect(try await store.lookUpToken(secret)?.1.id == root.id)
        #expect(try await store.lookUpToken(secret + "x") == nil)
        #expect(try await store.token(token.id).token == nil, "the secret is never read back")
        await #expect(throws: ManagerError.self) {
            try await store.createToken(userID: root.id, name: "bad", bio: "", scopes: ["everything"], expiresAt: Date().addingTimeInterval(60))
        }
    }

    @Test func jobsAreValidatedAndStored() async throws {
        let store = try await temporaryStore()
        var input = JobInput()
        input.type = "preheat"
        input.args = .object(["type": .string("image"), "url": .string("https://example.com/v2/a/manifests/1")])
        let job = try await store.createJob(input, userID: nil)
        #expect(job.state == "PENDING" && job.args["url"]?.stringValue == "https://example.com/v2/a/manifests/1")
        #expect(try await store.updateJob(job.id, state: .success).state == "SUCCESS")
        input.args = .object([:])
        await #expect(throws: ManagerError.self) { try await store.createJob(input, userID: nil) }
        input.type = "mine-bitcoin"
        await #expect(throws: ManagerError.self) { try await store.createJob(input, userID: nil) }
    }
}

@Suite struct SearcherAndSecretsTests {
    func cluster(_ id: UInt64, _ scopes: ClusterScopes, isDefault: Bool = false) throws -> SchedulerCluster {
        let json = """
        {"id":\(id),"name":"c\(id)","bio":"","config":{},"client_config":{},"scopes":\(ManagerStore.json(scopes)),
         "is_default":\(isDefault),"created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z"}
        """
        return try JSONCoding.decoder.decode(SchedulerCluster.self, from: Data(json.utf8))
    }

    @Test func scoresFollowDragonflysWeights() throws {
        let host = ClusterSearcher.Host(ip: "10.1.2.3", hostname: "node-7", idc: "idc-a", location: "cn|hz|a")
        let byCIDR = try cluster(1, ClusterScopes(cidrs: ["10.1.0.0/16"]))
        let byIDC = try cluster(2, ClusterScopes(idc: "idc-b|idc-a"))
        let byLocation = try cluster(3, ClusterScopes(location: "cn|hz|b"))
        let fallback = try cluster(4, ClusterScopes(), isDefault: true)
        #expect(abs(ClusterSearcher.score(byCIDR, host) - 0.3) < 1e-9)
        #expect(abs(ClusterSearcher.score(byIDC, host) - 0.25) < 1e-9)
        #expect(abs(ClusterSearcher.score(byLocation, host) - 0.14 * 2 / 5) < 1e-9)
        #expect(abs(ClusterSearcher.score(fallback, host) - 0.01) < 1e-9)
        let ranked = ClusterSearcher.rank([(fallback, 1), (byLocation, 1), (byIDC, 1), (byCIDR, 0)], for: host)
        #expect(ranked.map(\.id) == [2, 3, 4], "clusters without active schedulers are left out")
    }

    @Test func cidrsForBothFamilies() {
        #expect(CIDR("10.0.0.0/8")?.contains("10.200.1.1") == true)
        #expect(CIDR("10.0.0.0/8")?.contains("11.0.0.1") == false)
        #expect(CIDR("10.0.0.0/8")?.contains("::ffff:10.1.1.1") == true)
        #expect(CIDR("fd00::/8")?.contains("fd12:3456::1") == true)
        #expect(CIDR("fd00::/8")?.contains("fe80::1") == false)
        #expect(CIDR("0.0.0.0/0")?.contains("192.0.2.1") == true)
        #expect(CIDR("10.0.0.0/33") == nil && CIDR("10.0.0/8") == nil && CIDR("1::2::3/64") == nil)
    }

    @Test func jwtRoundTripAndTampering() throws {
        let signer = JWTSigner(key: "secret-key", lifetime: 60)
        let user = try JSONCoding.decoder.decode(UserRecord.self, from: Data(
            #"{"id":7,"name":"alice","email":"","role":"guest","state":"enable","created_at":"2026-01-01T00:00:00Z"}"#.utf8))
        let (token, _) = signer.sign(user)
        #expect(signer.verify(token)?.id == 7)
        #expect(JWTSigner(key: "other-key").verify(token) == nil)
        let parts = token.split(separator: ".")
        let forged = JWTSigner.base64URL(Array(#"{"id":1,"name":"root","role":"root","exp":99999999999,"orig_iat":0}"#.utf8))
        #expect(signer.verify("\(parts[0]).\(forged).\(parts[2])") == nil)
        #expect(signer.verify(token, now: Date().addingTimeInterval(120)) == nil, "expired")
    }

    @Test func passwordHashesVerify() {
        let stored = ManagerStore.hashPassword("correct horse")
        #expect(ManagerStore.passwordMatches("correct horse", stored: stored))
        #expect(!ManagerStore.passwordMatches("correct horsf", stored: stored))
        #expect(!ManagerStore.passwordMatches("x", stored: "garbage"))
        #expect(stored.hasPrefix("scrypt$15$8$1$"), "new hashes are scrypt")
        #expect(ManagerStore.isCurrentHash(stored))
        #expect(!ManagerStore.passwordMatches("", stored: stored))
        // Absurd stored parameters are refused rather than run.
        #expect(!ManagerStore.passwordMatches("correct horse", stored: "scrypt$40$8$1$00$00"))
    }

    @Test func scryptMatchesRFC7914() {
        // RFC 7914 section 12, second vector: "password", "NaCl", N=1024, r=8, p=16.
        let hash = Secrets.scrypt(password: "password", salt: Array("NaCl".utf8), logN: 10, r: 8, p: 16, length: 64)
        #expect(hash.map { Secrets.hex($0) } == "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b373162"
            + "2eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640")
    }

    @Test func legacyPBKDF2HashesStillVerify() {
        let salt = [UInt8](repeating: 7, count: 16)
        let hash = Secrets.pbkdf2SHA256(password: "old secret", salt: salt, iterations: 1000)
        let stored = "pbkdf2-sha256$1000$\(Secrets.hex(salt))$\(Secrets.hex(hash))"
        #expect(ManagerStore.passwordMatches("old secret", stored: stored))
        #expect(!ManagerStore.passwordMatches("old secreT", stored: stored))
        #expect(!ManagerStore.isCurrentHash(stored))
    }
}
