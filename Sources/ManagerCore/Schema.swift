import SQLStore

/// The manager's tables. Times are Unix seconds; configs, scopes, features and job
/// arguments are JSON text. Names follow Dragonfly's manager models.
enum Schema {
    static let migrations: [Migration] = [
        Migration(version: 1, [
            """
            CREATE TABLE scheduler_clusters (
              id {ID}, name TEXT NOT NULL UNIQUE, bio TEXT NOT NULL DEFAULT '',
              config TEXT NOT NULL DEFAULT '{}', client_config TEXT NOT NULL DEFAULT '{}',
              scopes TEXT NOT NULL DEFAULT '{}', is_default BIGINT NOT NULL DEFAULT 0,
              created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)
            """,
            """
            CREATE TABLE schedulers (
              id {ID}, hostname TEXT NOT NULL, idc TEXT, location TEXT, ip TEXT NOT NULL,
              port BIGINT NOT NULL, state TEXT NOT NULL DEFAULT 'inactive', features TEXT NOT NULL DEFAULT '[]',
              scheduler_cluster_id BIGINT NOT NULL REFERENCES scheduler_clusters(id) ON DELETE CASCADE,
              last_keep_alive_at BIGINT NOT NULL DEFAULT 0,
              created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL,
              UNIQUE (hostname, ip, scheduler_cluster_id))
            """,
            """
            CREATE TABLE seed_peer_clusters (
              id {ID}, name TEXT NOT NULL UNIQUE, bio TEXT NOT NULL DEFAULT '',
              config TEXT NOT NULL DEFAULT '{}', scheduler_cluster_id BIGINT REFERENCES scheduler_clusters(id) ON DELETE SET NULL,
              created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)
            """,
            """
            CREATE TABLE seed_peers (
              id {ID}, hostname TEXT NOT NULL, type TEXT NOT NULL DEFAULT 'super', idc TEXT, location TEXT,
              ip TEXT NOT NULL, port BIGINT NOT NULL, download_port BIGINT NOT NULL,
              state TEXT NOT NULL DEFAULT 'inactive',
              seed_peer_cluster_id BIGINT NOT NULL REFERENCES seed_peer_clusters(id) ON DELETE CASCADE,
              last_keep_alive_at BIGINT NOT NULL DEFAULT 0,
              created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL,
              UNIQUE (hostname, ip, seed_peer_cluster_id))
            """,
            """
            CREATE TABLE users (
              id {ID}, name TEXT NOT NULL UNIQUE, email TEXT NOT NULL DEFAULT '',
              password_hash TEXT NOT NULL, role TEXT NOT NULL DEFAULT 'guest', state TEXT NOT NULL DEFAULT 'enable',
              created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)
            """,
            """
            CREATE TABLE personal_access_tokens (
              id {ID}, name TEXT NOT NULL, bio TEXT NOT NULL DEFAULT '', token_hash TEXT NOT NULL UNIQUE,
              scopes TEXT NOT NULL DEFAULT '[]', state TEXT NOT NULL DEFAULT 'active', expired_at BIGINT NOT NULL,
              user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
              created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)
            """,
            """
            CREATE TABLE jobs (
              id {ID}, task_id TEXT NOT NULL DEFAULT '', bio TEXT NOT NULL DEFAULT '', type TEXT NOT NULL,
              state TEXT NOT NULL DEFAULT 'PENDING', args TEXT NOT NULL DEFAULT '{}', result TEXT NOT NULL DEFAULT '{}',
              user_id BIGINT, scheduler_cluster_ids TEXT NOT NULL DEFAULT '[]',
              created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)
            """,
            """
            CREATE TABLE applications (
              id {ID}, name TEXT NOT NULL UNIQUE, url TEXT NOT NULL DEFAULT '', bio TEXT NOT NULL DEFAULT '',
              priority TEXT NOT NULL DEFAULT '{}', user_id BIGINT,
              created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)
            """,
        ]),
        // Signed-out session tokens until they expire; kept in the store so a restart (or
        // another manager on the same database) does not accept them again.
        Migration(version: 2, [
            "CREATE TABLE revoked_tokens (token_id TEXT PRIMARY KEY, expires_at BIGINT NOT NULL)",
        ]),
    ]
}
