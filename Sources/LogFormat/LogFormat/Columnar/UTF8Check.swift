// Whether bytes are well-formed UTF-8 (Unicode 15, table 3-7: no overlong forms, no surrogates, nothing past
// U+10FFFF), as `String(validating:as:)` decides, without making a String: a block's string table is checked
// whole when it is read, and most of its strings are never built.
enum UTF8Check {
    static func isValid(_ u: UnsafeBufferPointer<UInt8>) -> Bool {
        var i = 0
        let n = u.count
        while i < n {
            // Eight ASCII bytes at a time: the common case.
            if i + 8 <= n {
                let word = UnsafeRawPointer(u.baseAddress! + i).loadUnaligned(as: UInt64.self)
                if word & 0x8080_8080_8080_8080 == 0 {
                    i += 8
                    continue
                }
            }
            let b = u[i]
            if b < 0x80 {
                i += 1
                continue
            }
            func continuation(_ k: Int) -> Bool { k < n && u[k] & 0xC0 == 0x80 }
            switch b {
            case 0xC2...0xDF:
                guard continuation(i + 1) else { return false }
                i += 2
            case 0xE0...0xEF:
                guard i + 1 < n else { return false }
                let c = u[i + 1]
                let lower: UInt8 = b == 0xE0 ? 0xA0 : 0x80
                let upper: UInt8 = b == 0xED ? 0x9F : 0xBF
                guard c >= lower, c <= upper, continuation(i + 2) else { return false }
                i += 3
            case 0xF0...0xF4:
                guard i + 1 < n else { return false }
                let c = u[i + 1]
                let lower: UInt8 = b == 0xF0 ? 0x90 : 0x80
                let upper: UInt8 = b == 0xF4 ? 0x8F : 0xBF
                guard c >= lower, c <= upper, continuation(i + 2), continuation(i + 3) else { return false }
                i += 4
            default:
                return false
            }
        }
        return true
    }
}
