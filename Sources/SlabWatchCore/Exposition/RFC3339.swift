/// RFC 3339 timestamps (`2026-11-25T12:44:20.123Z`) from Unix milliseconds,
/// computed without Foundation or the C library so the core stays pure.
public enum RFC3339: Sendable {
    public static func format(unixMilliseconds: Int64) -> String {
        var text = TextBuffer(reservingCapacity: 24)
        append(unixMilliseconds: unixMilliseconds, to: &text)
        return String(decoding: text.bytes, as: UTF8.self)
    }

    /// 0000-01-01T00:00:00.000Z and 9999-12-31T23:59:59.999Z: RFC 3339 has
    /// four-digit years, so times beyond (a restored or replayed time can be
    /// anything) are written as the nearest end.
    static let representable: ClosedRange<Int64> = -62_167_219_200_000...253_402_300_799_999

    public static func append(unixMilliseconds: Int64, to text: inout TextBuffer) {
        let unixMilliseconds = min(max(unixMilliseconds, representable.lowerBound), representable.upperBound)
        let seconds = floorDivide(unixMilliseconds, 1000)
        let millis = Int(unixMilliseconds - seconds * 1000)
        let days = Int(floorDivide(seconds, 86_400))
        let secondOfDay = Int(seconds - Int64(days) * 86_400)
        let (year, month, day) = civil(daysSinceEpoch: days)
        pad(year, 4, &text); text.append(byte: 0x2D)
        pad(month, 2, &text); text.append(byte: 0x2D)
        pad(day, 2, &text); text.append(byte: 0x54)
        pad(secondOfDay / 3600, 2, &text); text.append(byte: 0x3A)
        pad(secondOfDay / 60 % 60, 2, &text); text.append(byte: 0x3A)
        pad(secondOfDay % 60, 2, &text); text.append(byte: 0x2E)
        pad(millis, 3, &text); text.append(byte: 0x5A)
    }

    /// Reads back what `format` writes (`YYYY-MM-DDTHH:MM:SS.mmmZ`, UTC);
    /// nil for anything else.
    public static func parse(_ text: String) -> Int64? {
        let b = Array(text.utf8)
        guard b.count == 24, b[4] == 0x2D, b[7] == 0x2D, b[10] == 0x54, b[13] == 0x3A, b[16] == 0x3A, b[19] == 0x2E, b[23] == 0x5A
        else { return nil }
        func number(_ range: Range<Int>) -> Int? {
            var value = 0
            for byte in b[range] {
                guard (0x30...0x39).contains(byte) else { return nil }
                value = value * 10 + Int(byte - 0x30)
            }
            return value
        }
        guard let year = number(0..<4), let month = number(5..<7), let day = number(8..<10), let hour = number(11..<13),
              let minute = number(14..<16), let second = number(17..<19), let millis = number(20..<23),
              (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 61 else { return nil }
        let days = daysSinceEpoch(year: year, month: month, day: day)
        return (Int64(days) * 86_400 + Int64(hour * 3600 + minute * 60 + second)) * 1000 + Int64(millis)
    }

    /// Howard Hinnant's days-from-civil, the inverse of `civil`.
    static func daysSinceEpoch(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    /// Howard Hinnant's days-to-civil algorithm (proleptic Gregorian calendar).
    static func civil(daysSinceEpoch: Int) -> (year: Int, month: Int, day: Int) {
        let z = daysSinceEpoch + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    private static func pad(_ value: Int, _ width: Int, _ text: inout TextBuffer) {
        var divisor = 1
        for _ in 1..<width { divisor *= 10 }
        var remaining = value
        while divisor > 0 {
            text.append(byte: UInt8(remaining / divisor % 10) + 0x30)
            remaining %= divisor
            divisor /= 10
        }
    }

    private static func floorDivide(_ a: Int64, _ b: Int64) -> Int64 {
        let q = a / b
        return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
    }
}
