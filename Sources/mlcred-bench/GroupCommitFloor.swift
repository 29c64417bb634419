/// The group-commit floor of SPEC §11: the simplest loop of writer threads sharing fsyncs on
/// the same file system as the daemon's store, independent of mlcred's own writer. Each commit
/// is a one-row insert of about an audit record's size; an operation is two such commits in
/// turn, as token issue + credential fetch are.
final class GroupCommitFloor: @unchecked Sendable {
    let committer: FloorCommitter<Int>

    init(path: String) throws {
        let payload = String(repeating: "x", count: 200)  // about an audit record's size
        committer = try FloorCommitter(path: path, name: "group-commit floor") { db, writers in
            for writer in writers {
                try db.execute(sql: "INSERT INTO floor(writer, payload) VALUES (?, ?)", arguments: [writer, payload])
            }
        }
        try committer.database.write { db in
            try db.execute(sql: "CREATE TABLE IF NOT EXISTS floor (id INTEGER PRIMARY KEY, writer INTEGER NOT NULL, payload TEXT NOT NULL)")
        }
    }

    func stop() { committer.stop() }
}

/// A bench worker of the floor: two durable commits per operation.
final class GroupCommitWorker: Worker {
    let floor: GroupCommitFloor
    let id: Int

    init(floor: GroupCommitFloor, id: Int) {
        self.floor = floor
        self.id = id
    }

    func operate() throws {
        floor.committer.commit(writer: id, id)
        floor.committer.commit(writer: id, id)
    }
}
