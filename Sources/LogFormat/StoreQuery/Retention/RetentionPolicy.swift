// The retention policy (docs/retention.md): when sealed segments move to the archive
// tier, when they expire, and the legal holds that stop expiry. Read from the `retention:` section of the
// collector's YAML file, so the collector's schedule and `auditq retention` apply the same rules.
import LogFormat
import Yams

public struct RetentionPolicy: Sendable, Hashable {
    /// Archive a hot segment once its newest record is this many days old; nil: never.
    public var archiveAfterDays: Int?
    /// Expire a segment once its newest record is this many days old, unless a hold covers it; nil: never.
    public var expireAfterDays: Int?
    /// zlib level (1…9) of the archive tier.
    public var archiveLevel: Int32 = 9
    /// How often the collector runs the job itself, in seconds; 0: never (cron or a CronJob runs auditq).
    public var scheduleIntervalSeconds = 0
    public var legalHolds: [LegalHold] = []

    public init(
        archiveAfterDays: Int? = nil, expireAfterDays: Int? = nil, archiveLevel: Int32 = 9,
        scheduleIntervalSeconds: Int = 0,
        legalHolds: [LegalHold] = []
    ) {
        self.archiveAfterDays = archiveAfterDays
        self.expireAfterDays = expireAfterDays
        self.archiveLevel = archiveLevel
        self.scheduleIntervalSeconds = scheduleIntervalSeconds
        self.legalHolds = legalHolds
    }

    /// A short description recorded in every tombstone.
    public var summary: String {
        "archive_after_days=\(archiveAfterDays.map(String.init) ?? "never") expire_after_days=\(expireAfterDays.map(String.init) ?? "never") holds=\(legalHolds.map(\.name).joined(separator: ","))"
    }

    /// Stops expiry of every segment it covers: one holding records of `user` (within the time range, when one
    /// is given), one overlapping the time range, or one named by sequence. Archiving is not stopped: it keeps
    /// every record and root.
    public struct LegalHold: Sendable, Hashable {
        public var name: String
        /// A user subject or e-mail, looked up in each segment's index (the user field).
        public var user: String?
        /// Record start times, inclusive, Unix ns.
        public var from: UInt64?
        public var to: UInt64?
        /// Segment sequences.
        public var segments: [UInt64] = []

        public init(name: String, user: String? = nil, from: UInt64? = nil, to: UInt64? = nil, segments: [UInt64] = [])
        {
            self.name = name
            self.user = user
            self.from = from
            self.to = to
            self.segments = segments
        }

        var timeRange: ClosedRange<UInt64>? {
            guard from != nil || to != nil else { return nil }
            return (from ?? 0)...(to ?? .max)
        }
    }

    /// The problems of a policy file: every one is reported, each naming the key it concerns.
    public struct Problem: Error, Sendable, Equatable, CustomStringConvertible {
        public var messages: [String]
        public init(messages: [String]) { self.messages = messages }
        public var description: String { messages.joined(separator: "\n") }
    }

    static let keys: Set<String> = [
        "archive_after_days", "expire_after_days", "archive_level", "schedule_interval_seconds", "legal_holds",
    ]
    static let holdKeys: Set<String> = ["name", "user", "from", "to", "segments"]

    /// Reads the `retention:` section of a YAML document (other top-level keys belong to the collector and are
    /// ignored here). A document without the section is an empty policy: nothing moves, nothing expires.
    public static func parse(yaml text: String, source: String = "policy") throws(Problem) -> RetentionPolicy {
        let root: Any?
        // Timestamps and nulls stay strings: the hold dates are parsed here, with precise errors.
        let resolver = Resolver.default.removing(.timestamp).removing(.null)
        do { root = try Yams.load(yaml: text, resolver) } catch {
            throw Problem(messages: ["\(source): not valid YAML: \(error)"])
        }
        guard let root else { return RetentionPolicy() }
        guard let map = root as? [String: Any] else {
            throw Problem(messages: ["\(source): the top level must be a mapping"])
        }
        guard let section = map["retention"] else { return RetentionPolicy() }
        return try parse(section: section, source: source)
    }

    static func parse(section: Any, source: String) throws(Problem) -> RetentionPolicy {
        if let s = section as? String, ["", "~", "null"].contains(s) { return RetentionPolicy() }
        guard let m = section as? [String: Any] else {
            throw Problem(messages: ["\(source): retention must be a mapping"])
        }
        var problems: [String] = []
        var p = RetentionPolicy()
        for k in m.keys.sorted() where !keys.contains(k) { problems.append("\(source): unknown key retention.\(k)") }
        func positiveInt(_ key: String, min: Int = 1, max: Int = Int.max) -> Int? {
            guard let v = m[key] else { return nil }
            guard let i = v as? Int, !(v is Bool) else {
                problems.append("\(source): retention.\(key) must be an integer, found \(describe(v))")
                return nil
            }
            guard i >= min, i <= max else {
                problems.append("\(source): retention.\(key) must be between \(min) and \(max), found \(i)")
                return nil
            }
            return i
        }
        p.archiveAfterDays = positiveInt("archive_after_days", min: 0, max: 1_000_000)
        p.expireAfterDays = positiveInt("expire_after_days", min: 1, max: 1_000_000)
        if let level = positiveInt("archive_level", min: 1, max: 9) { p.archiveLevel = Int32(level) }
        p.scheduleIntervalSeconds = positiveInt("schedule_interval_seconds", min: 0, max: 31_622_400) ?? 0
        if let a = p.archiveAfterDays, let e = p.expireAfterDays, e <= a {
            problems.append(
                "\(source): retention.expire_after_days (\(e)) must be greater than archive_after_days (\(a)): segments would expire before they are archived; leave archive_after_days out to never archive"
            )
        }
        if let holds = m["legal_holds"] {
            if let list = holds as? [Any] {
                var names: Set<String> = []
                for (i, item) in list.enumerated() {
                    let at = "\(source): retention.legal_holds[\(i)]"
                    guard let h = item as? [String: Any] else {
                        problems.append("\(at) must be a mapping with a name and a user, from/to or segments")
                        continue
                    }
                    for k in h.keys.sorted() where !holdKeys.contains(k) { problems.append("\(at): unknown key \(k)") }
                    guard let name = h["name"] as? String, !name.isEmpty else {
                        problems.append("\(at): name is required (a non-empty string, e.g. the case number)")
                        continue
                    }
                    if !names.insert(name).inserted {
                        problems.append("\(at): a second hold named \(name.debugDescription)")
                    }
                    var hold = LegalHold(name: name)
                    if let u = h["user"] {
                        if let s = u as? String, !s.isEmpty {
                            hold.user = s
                        } else {
                            problems.append("\(at).user must be a non-empty string, found \(describe(u))")
                        }
                    }
                    func instant(_ key: String) -> UInt64? {
                        guard let v = h[key] else { return nil }
                        let text = v as? String ?? ""
                        if let t = UnixTime.parseInstant(text) { return t }
                        if let t = UnixTime.parseDay(Substring(text)) {
                            return key == "to" ? t + UnixTime.nanosPerDay - 1 : t
                        }
                        problems.append(
                            "\(at).\(key) must be an ISO 8601 day or instant (e.g. 2026-01-31 or 2026-01-31T12:00:00Z), found \(describe(v))"
                        )
                        return nil
                    }
                    hold.from = instant("from")
                    hold.to = instant("to")
                    if let f = hold.from, let t = hold.to, f > t {
                        problems.append("\(at): from (\(UnixTime.format(f))) is after to (\(UnixTime.format(t)))")
                    }
                    if let s = h["segments"] {
                        if let l = s as? [Any], !l.isEmpty, l.allSatisfy({ ($0 as? Int).map { $0 > 0 } ?? false }) {
                            hold.segments = l.compactMap { ($0 as? Int).map { UInt64($0) } }
                        } else {
                            problems.append(
                                "\(at).segments must be a non-empty list of segment sequence numbers (positive integers), found \(describe(s))"
                            )
                        }
                    }
                    if hold.user == nil && hold.from == nil && hold.to == nil && hold.segments.isEmpty
                        && h["user"] == nil
                        && h["from"] == nil && h["to"] == nil && h["segments"] == nil
                    {
                        problems.append("\(at) (\(name)) covers nothing: give a user, a from/to time range or segments")
                    }
                    p.legalHolds.append(hold)
                }
            } else {
                problems.append("\(source): retention.legal_holds must be a list, found \(describe(holds))")
            }
        }
        guard problems.isEmpty else { throw Problem(messages: problems) }
        return p
    }

    static func describe(_ v: Any) -> String {
        switch v {
        case let s as String: return "the string \(s.debugDescription)"
        case let b as Bool: return "\(b)"
        case let i as Int: return "\(i)"
        case let d as Double: return "\(d)"
        case is [Any]: return "a list"
        case is [String: Any]: return "a mapping"
        default: return "\(v)"
        }
    }
}
