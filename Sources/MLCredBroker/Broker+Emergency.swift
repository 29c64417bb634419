import MLCredAPI
import MLCredPolicy
import MLCredStore
import MLCredVault

/// Break-glass (SPEC §13; HIPAA 45 CFR 164.312(a)(2)(ii), an emergency access procedure): a
/// role marked `emergency = true` issues nothing until two different admins open it within
/// `confirmWindowSeconds` of each other; it then stays open for at most `maximumOpenSeconds`,
/// every record under it carries the reason, and closing it (or its end) ends its tokens.
extension Broker {
    static let confirmWindowSeconds = 600.0
    static let maximumOpenSeconds = 3600

    /// The first admin asks for `role`; a second, different admin (within 10 minutes) opens it.
    public func openEmergency(_ request: EmergencyOpenRequest, principal: Principal) async throws -> EmergencyInfo {
        guard Names.isValidRoleName(request.role) else {
            throw APIError(.invalidName, "invalid role name: \(Names.roleNameRequirement)")
        }
        guard let role = policies.set.roles[request.role], role.emergency else {
            throw APIError(.emergencyRoleMissing, "no role '\(request.role)' marked emergency = true is loaded")
        }
        let reason = request.reason.trimmingCharacters(in: " \t\n")
        guard !reason.isEmpty, reason.utf8.count <= 512, !reason.containsControlCharacters else {
            throw APIError(.invalidBody, "the reason must be 1-512 characters of one line: say why access is needed")
        }
        var seconds = Self.maximumOpenSeconds
        if let text = request.duration {
            guard let parsed = PolicyDuration.parse(text), parsed > 0, parsed <= Self.maximumOpenSeconds else {
                throw APIError(.invalidTTL, "invalid 'for': a duration up to 1h, e.g. 30m")
            }
            seconds = parsed
        }
        let now = WallClock.now()
        let uid = principal.uid
        let duration = Double(seconds)
        return try await write { connection -> EmergencyInfo in
            let current = try connection.emergency(role: role.name)
            if let current, current.isOpen(at: now) {
                return Self.info(current, now: now)
            }
            if let current, current.openedAt == nil, now - current.firstAt < Self.confirmWindowSeconds {
                guard current.firstUID != uid else {
                    throw APIError(.emergencySameAdmin, "you asked for emergency role '\(role.name)' already: a second, different admin must open it (before \(Timestamp.format(epochSeconds: current.firstAt + Self.confirmWindowSeconds)))")
                }
                var opened = current
                opened.secondUID = uid
                opened.openedAt = now
                // Open for the shorter of what the two admins asked.
                opened.until = now + min(duration, current.duration)
                try connection.saveEmergency(opened)
                try connection.appendAudit(AuditEvent(
                    principal: principal, action: .emergencyOpen, role: role.name, result: .allowed,
                    reason: "opened by uids \(current.firstUID) and \(uid) until \(Timestamp.format(epochSeconds: opened.until ?? now)): \(current.reason); confirmed: \(reason)"),
                    time: now)
                return Self.info(opened, now: now)
            }
            let asked = EmergencyRecord(role: role.name, firstUID: uid, firstAt: now, reason: reason, duration: duration)
            try connection.saveEmergency(asked)
            try connection.appendAudit(AuditEvent(
                principal: principal, action: .emergencyOpen, role: role.name, result: .allowed,
                reason: "asked for by uid \(uid), needs a second admin before \(Timestamp.format(epochSeconds: now + Self.confirmWindowSeconds)): \(reason)"),
                time: now)
            return Self.info(asked, now: now)
        }
    }

    /// Closes an emergency role (pending or open) and ends its live tokens.
    public func closeEmergency(role name: String, principal: Principal) async throws -> Int {
        guard Names.isValidRoleName(name) else { throw APIError(.invalidName, "invalid role name: \(Names.roleNameRequirement)") }
        let now = WallClock.now()
        let accessors = try await write { connection -> [String]? in
            guard try connection.removeEmergency(role: name) else { return nil }
            let live = try connection.liveTokenAccessors(role: name, now: now)
            try connection.appendAudit(AuditEvent(principal: principal, action: .emergencyClose, role: name, result: .allowed,
                                                  reason: "closed; \(Plural.count(live.count, "live token")) revoked"), time: now)
            return live
        }
        guard let accessors else { throw APIError(.emergencyRoleMissing, "emergency role '\(name)' is not open or asked for") }
        for accessor in accessors {
            _ = try? await revoke(accessor: accessor, principal: principal, reason: "emergency role '\(name)' closed")
        }
        return accessors.count
    }

    /// Emergency roles asked for or open now (lapsed requests and ended emergencies are left out).
    public func listEmergencies() async throws -> [EmergencyInfo] {
        let now = WallClock.now()
        return try await read { try $0.emergencies() }.compactMap { record in
            if record.isOpen(at: now) || (record.openedAt == nil && now - record.firstAt < Self.confirmWindowSeconds) {
                return Self.info(record, now: now)
            }
            return nil
        }
    }

    /// Emergency roles open now, from a point read (for `status`, which any caller may ask).
    public func openEmergencies() async -> [EmergencyInfo] {
        let now = WallClock.now()
        let records = (try? await pointRead { try $0.emergencies() }) ?? []
        return records.filter { $0.isOpen(at: now) }.map { Self.info($0, now: now) }
    }

    /// The open emergency of `role`, or 403 `emergency_closed` (checked at every issuance).
    func requireOpenEmergency(_ role: Role) async throws -> EmergencyRecord {
        let now = WallClock.now()
        let name = role.name
        guard let record = try await pointRead({ try $0.emergency(role: name) }), record.isOpen(at: now) else {
            throw APIError(.emergencyClosed, "emergency role '\(role.name)' is closed: two different admins must run 'mlcred emergency open --role \(role.name) --reason TEXT' within 10 minutes")
        }
        return record
    }

    /// `event` with the emergency's reason added: every record under an emergency carries it.
    static func underEmergency(_ event: AuditEvent, _ emergency: EmergencyRecord) -> AuditEvent {
        AuditEvent(principal: event.principal, action: event.action, role: event.role, grant: event.grant, result: event.result,
                   reason: (event.reason.map { $0 + "; " } ?? "") + "emergency: \(emergency.reason)", accessor: event.accessor)
    }

    static func info(_ record: EmergencyRecord, now: Double) -> EmergencyInfo {
        let open = record.isOpen(at: now)
        return EmergencyInfo(role: record.role, state: open ? .open : .pending, reason: record.reason,
                             openedBy: [record.firstUID] + (record.secondUID.map { [$0] } ?? []),
                             until: Timestamp.format(epochSeconds: open ? (record.until ?? now) : record.firstAt + confirmWindowSeconds))
    }
}

extension String {
    func trimmingCharacters(in characters: String) -> String {
        let set = Set(characters)
        var slice = Substring(self)
        while let first = slice.first, set.contains(first) { slice = slice.dropFirst() }
        while let last = slice.last, set.contains(last) { slice = slice.dropLast() }
        return String(slice)
    }
}
