// The command lines of the questions asked most (search, activity, trace) read without argument-parser's
// reflection, when they are spelled plainly; every other line, and every line this cannot read, goes to
// argument-parser as before.
import ArgumentParser

/// argument-parser builds a command's arguments by reflection: each option group's type is mirrored, decoded
/// through `Decodable` and checked against half a dozen protocols, and each first check of a type against a
/// protocol scans all of the binary's ~10,000 conformance records. That was about 3 ms of CPU of every query
/// process (a light user's day took 8–10 ms, `--version` 4). A line of `search`, `activity` or `trace` made only of
/// their options' long names — `--name value` or `--name=value`, `--data` and `--store` as often as wanted, every
/// other option at most once, flags bare, the trace id as the one positional of `trace` — is read here into the
/// command value argument-parser would build, and the `validate()` rules run on it as argument-parser runs them.
/// Anything else returns nil and argument-parser reads the line: another command, an unknown or repeated name, a
/// short name, `--`, a value that is empty or starts with `-`, a value that is not a number where one is asked, a
/// missing required option, or a line a `validate()` refuses. So help, usage errors and their messages and exit
/// statuses stay argument-parser's alone.
///
/// In debug builds (those the tests run) argument-parser also parses every line read here, and the two commands
/// must print alike (`String(describing:)` shows every option's value, and a value left unset as `*definition*`).
enum PlainCommandLine {
    /// The command `arguments` (without the program's name) ask for, or nil when argument-parser must read them.
    static func command(_ arguments: [String]) -> (any ParsableCommand)? {
        guard let name = arguments.first else { return nil }
        let rest = arguments.dropFirst()
        let command: (any ParsableCommand)?
        switch name {
        case "search": command = try? AuditQ.Search(plain: PlainWords(rest, Names.search))
        case "activity": command = try? AuditQ.Activity(plain: PlainWords(rest, Names.activity))
        case "trace": command = try? AuditQ.Trace(plain: PlainWords(rest, Names.trace))
        default: return nil
        }
        #if DEBUG
            if let command {
                let parsed = argumentParserReading(arguments)
                precondition(
                    parsed == String(describing: command),
                    "PlainCommandLine read \(arguments) otherwise than argument-parser: \(command) against "
                        + (parsed ?? "an error"))
            }
        #endif
        return command
    }

    /// The command argument-parser builds from `arguments`, printed, or nil when it refuses them: what a command
    /// read here must print as.
    static func argumentParserReading(_ arguments: [String]) -> String? {
        (try? AuditQ.parseAsRoot(arguments)).map { String(describing: $0) }
    }

    /// The long names each command takes, by kind.
    struct Names {
        /// Options that take one value and may be given once.
        var single: Set<String>
        /// Options that may be given again, each time with one value.
        var repeatable: Set<String> = ["--data", "--store"]
        var flags: Set<String>
        var positionals = 0

        static let store: Set<String> = ["--s3-config", "--cache-dir", "--cache-mib", "--listing-max-age"]
        static let time: Set<String> = ["--date", "--from", "--to", "--tz"]
        static let filters: Set<String> = ["--status", "--method", "--path-prefix", "--min-duration"]

        static let search = Names(
            single: store.union(time).union(filters).union([
                "--format", "--user", "--group", "--service", "--workload", "--trace", "--limit",
            ]),
            flags: ["--include-ledgers", "--traces"])
        static let activity = Names(
            single: store.union(time).union(filters).union(["--format", "--user", "--limit"]),
            flags: ["--include-ledgers", "--tree"])
        static let trace = Names(single: store.union(["--format", "--tz"]), flags: [], positionals: 1)
    }
}

/// A command line's words sorted by name, or thrown out (`Refused`) when it is not a plain one (`PlainCommandLine`).
struct PlainWords {
    struct Refused: Error {}

    private var values: [String: [String]] = [:]
    private var flags: Set<String> = []
    private(set) var positionals: [String] = []

    init(_ words: ArraySlice<String>, _ names: PlainCommandLine.Names) throws(Refused) {
        var i = words.startIndex
        while i < words.endIndex {
            let word = words[i]
            i += 1
            guard word.hasPrefix("-") else {
                guard !word.isEmpty, positionals.count < names.positionals else { throw Refused() }
                positionals.append(word)
                continue
            }
            var name = word
            var value: String?
            if let equals = word.firstIndex(of: "=") {
                name = String(word[..<equals])
                value = String(word[word.index(after: equals)...])
            }
            if names.flags.contains(name) {
                guard value == nil, flags.insert(name).inserted else { throw Refused() }
                continue
            }
            let repeatable = names.repeatable.contains(name)
            guard repeatable || names.single.contains(name), repeatable || values[name] == nil else { throw Refused() }
            if value == nil {
                guard i < words.endIndex else { throw Refused() }
                value = words[i]
                i += 1
            }
            guard let value, !value.isEmpty, !value.hasPrefix("-") else { throw Refused() }
            values[name, default: []].append(value)
        }
    }

    /// The one value of option `name`, if given.
    func value(_ name: String) -> String? { values[name]?.first }

    /// Every value of a repeatable option, in order.
    func all(_ name: String) -> [String] { values[name] ?? [] }

    /// Option `name`'s value as an integer, if given; refused when it is not one.
    func int(_ name: String) throws(Refused) -> Int? {
        guard let text = value(name) else { return nil }
        guard let n = Int(text) else { throw Refused() }
        return n
    }

    func flag(_ name: String) -> Bool { flags.contains(name) }
}

// Each type is filled whole, every property set, as argument-parser's decoding leaves it; then its validate().

extension ParsableArguments {
    /// A value whose every property `fill` sets, checked by its `validate()` as argument-parser checks one.
    static func plain(_ fill: (inout Self) throws -> Void) throws -> Self {
        var value = Self()
        try fill(&value)
        try value.validate()
        return value
    }
}

extension PlainWords {
    var data: DataOptions { get throws { try .plain { $0.directories = all("--data") } } }

    var store: StoreOptions {
        get throws {
            try .plain {
                $0.stores = all("--store")
                $0.s3Config = value("--s3-config")
                $0.cacheDir = value("--cache-dir")
                $0.cacheMiB = try int("--cache-mib")
                $0.listingMaxAge = try int("--listing-max-age")
            }
        }
    }

    var zone: ZoneOptions { get throws { try .plain { $0.tz = value("--tz") ?? ZoneOptions.defaultZone } } }

    var time: TimeOptions {
        get throws {
            let zone = try self.zone
            return try .plain {
                $0.date = value("--date")
                $0.from = value("--from")
                $0.to = value("--to")
                $0.zoneOptions = zone
            }
        }
    }

    var format: FormatOptions {
        get throws { try .plain { $0.format = value("--format") ?? FormatOptions.defaultFormat } }
    }

    var filters: FilterOptions {
        get throws {
            try .plain {
                $0.status = value("--status")
                $0.method = value("--method")
                $0.pathPrefix = value("--path-prefix")
                $0.minDuration = value("--min-duration")
                $0.includeLedgers = flag("--include-ledgers")
            }
        }
    }

    var terms: TermOptions {
        get throws {
            try .plain {
                $0.user = value("--user")
                $0.group = value("--group")
                $0.service = value("--service")
                $0.workload = value("--workload")
                $0.trace = value("--trace")
            }
        }
    }
}

extension AuditQ.Search {
    init(plain w: PlainWords) throws {
        let (data, store, time, format, filters, terms) = try (w.data, w.store, w.time, w.format, w.filters, w.terms)
        self = try .plain {
            $0.data = data
            $0.store = store
            $0.time = time
            $0.output = format
            $0.filters = filters
            $0.terms = terms
            $0.limit = try w.int("--limit")
            $0.traces = w.flag("--traces")
        }
    }
}

extension AuditQ.Activity {
    init(plain w: PlainWords) throws {
        guard let user = w.value("--user") else { throw PlainWords.Refused() }
        let (data, store, time, format, filters) = try (w.data, w.store, w.time, w.format, w.filters)
        self = try .plain {
            $0.data = data
            $0.store = store
            $0.time = time
            $0.output = format
            $0.filters = filters
            $0.user = user
            $0.limit = try w.int("--limit")
            $0.tree = w.flag("--tree")
        }
    }
}

extension AuditQ.Trace {
    init(plain w: PlainWords) throws {
        guard w.positionals.count == 1 else { throw PlainWords.Refused() }
        let (data, store, format, zone) = try (w.data, w.store, w.format, w.zone)
        self = try .plain {
            $0.data = data
            $0.store = store
            $0.output = format
            $0.zoneOptions = zone
            $0.id = w.positionals[0]
        }
    }
}
