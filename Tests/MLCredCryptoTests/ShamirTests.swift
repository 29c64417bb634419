import XCTest
@testable import MLCredCrypto

final class ShamirTests: XCTestCase {
    override func setUp() {
        XCTAssertNoThrow(try Sodium.initialize())
    }

    // MARK: - The field

    func testFieldProductsMatchTheAESSpecification() {
        // FIPS-197 §4.2: {57} • {83} = {c1}; §4.2.1: {57} • {13} = {fe} and its xtime chain.
        XCTAssertEqual(GF256.multiply(0x57, 0x83), 0xC1)
        XCTAssertEqual(GF256.multiply(0x83, 0x57), 0xC1)
        XCTAssertEqual(GF256.multiply(0x57, 0x13), 0xFE)
        XCTAssertEqual(GF256.multiply(0x57, 0x02), 0xAE)
        XCTAssertEqual(GF256.multiply(0x57, 0x04), 0x47)
        XCTAssertEqual(GF256.multiply(0x57, 0x08), 0x8E)
        XCTAssertEqual(GF256.multiply(0x57, 0x10), 0x07)
        XCTAssertEqual(GF256.multiply(0x57, 0x00), 0x00)
        XCTAssertEqual(GF256.multiply(0x57, 0x01), 0x57)
    }

    func testTheInverseOf53IsCA() {
        // FIPS-197 §5.1.1 (the S-box's first step): {53}^-1 = {ca}.
        XCTAssertEqual(GF256.inverse(0x53), 0xCA)
        XCTAssertEqual(GF256.inverse(0xCA), 0x53)
        XCTAssertEqual(GF256.inverse(0x01), 0x01)
        XCTAssertEqual(GF256.inverse(0x00), 0x00)
    }

    func testMultiplicationAgreesWithLogTablesForEveryPair() {
        // An independent reference: powers of the generator {03}, built with xtime.
        var exp = [UInt8](repeating: 0, count: 255)
        var log = [Int](repeating: 0, count: 256)
        var element: UInt8 = 1
        for power in 0..<255 {
            exp[power] = element
            log[Int(element)] = power
            let doubled = (element << 1) ^ ((element & 0x80) != 0 ? 0x1B : 0)
            element = doubled ^ element
        }
        XCTAssertEqual(element, 1, "{03} generates the multiplicative group")
        XCTAssertEqual(Set(exp).count, 255)
        for a in 0...255 {
            for b in 0...255 {
                let expected: UInt8 = (a == 0 || b == 0) ? 0 : exp[(log[a] + log[b]) % 255]
                if GF256.multiply(UInt8(a), UInt8(b)) != expected {
                    XCTFail("\(a) * \(b)")
                    return
                }
            }
        }
    }

    func testEveryNonzeroElementTimesItsInverseIsOne() {
        for a in UInt8(1)...UInt8(255) {
            XCTAssertEqual(GF256.multiply(a, GF256.inverse(a)), 1, "element \(a)")
        }
    }

    // MARK: - Splitting and combining

    func testSplitMatchesHandComputedVectors() throws {
        // y = 57 + 83·x: y(1) = 57 ^ 83 = d4; y(2) = 57 ^ (83·02 = 1d) = 4a.
        let one = try Shamir.split(SecureBytes.copying([0x57]), shares: 2, threshold: 2,
                                   splitID: [1, 2, 3, 4], coefficients: SecureBytes.copying([0x83]))
        XCTAssertEqual(try one.map(value), [[0xD4], [0x4A]])
        XCTAssertEqual(try value(Shamir.combine(one)), [0x57])
        XCTAssertEqual(try value(Shamir.combine(one.reversed())), [0x57])

        // Threshold 3, four bytes; expected values from a separate implementation (schoolbook
        // polynomial product reduced by 0x11B, in Python).
        let secret: [UInt8] = [0x53, 0xCA, 0x01, 0xFF]
        let coefficients: [UInt8] = [0x57, 0x83, 0x13, 0x02, 0x00, 0x00, 0xFF, 0xFF]
        let shares = try Shamir.split(SecureBytes.copying(secret), shares: 4, threshold: 3,
                                      splitID: [1, 2, 3, 4], coefficients: SecureBytes.copying(coefficients))
        XCTAssertEqual(try shares.map(value), [
            [0x87, 0xDB, 0x01, 0xFF],
            [0xC7, 0xE4, 0x01, 0xCB],
            [0x13, 0xF5, 0x01, 0xCB],
            [0xFC, 0xA6, 0x01, 0x47],
        ])
        XCTAssertEqual(shares.map(\.x), [1, 2, 3, 4])
        XCTAssertEqual(try value(Shamir.combine([shares[3], shares[1], shares[0]])), secret)
    }

    func testAnyKOfNSharesRecoverTheSecret() throws {
        let secret = Sodium.randomBytes(32)
        for count in 2...6 {
            for threshold in 2...count {
                let shares = try Shamir.split(SecureBytes.copying(secret), shares: count, threshold: threshold)
                XCTAssertEqual(Set(shares.map(\.x)).count, count)
                for subset in subsets(of: shares) {
                    if subset.count >= threshold {
                        XCTAssertEqual(try value(Shamir.combine(subset)), secret, "\(subset.map(\.x)) of \(count), threshold \(threshold)")
                        XCTAssertEqual(try value(Shamir.combine(subset.reversed())), secret)
                    } else {
                        XCTAssertThrowsError(try Shamir.combine(subset)) {
                            XCTAssertEqual($0 as? ShamirError, subset.isEmpty ? .noShares : .notEnoughShares(have: subset.count, need: threshold))
                        }
                    }
                }
            }
        }
    }

    func testRandomSubsetsOfLargeSplitsRecoverTheSecret() throws {
        for (length, threshold) in [(1, 2), (32, 17), (64, 128), (32, 255)] {
            let secret = Sodium.randomBytes(length)
            let shares = try Shamir.split(SecureBytes.copying(secret), shares: 255, threshold: threshold)
            XCTAssertEqual(shares.map(\.x), Array(1...255))
            for _ in 0..<5 {
                let subset = Array(shares.shuffled().prefix(threshold))
                XCTAssertEqual(try value(Shamir.combine(subset)), secret, "threshold \(threshold)")
            }
            let more = Array(shares.shuffled().prefix(min(255, threshold + 3)))
            XCTAssertEqual(try value(Shamir.combine(more)), secret)
            XCTAssertThrowsError(try Shamir.combine(Array(shares.prefix(threshold - 1)))) {
                XCTAssertEqual($0 as? ShamirError, .notEnoughShares(have: threshold - 1, need: threshold))
            }
        }
    }

    func testEachByteAndEachSplitGetFreshCoefficients() throws {
        // With one polynomial reused for every byte, a secret of equal bytes would give shares of
        // equal bytes (a chance of 2^-504 per share with fresh ones).
        let secret = [UInt8](repeating: 0x42, count: 64)
        let first = try Shamir.split(SecureBytes.copying(secret), shares: 3, threshold: 2)
        for share in first {
            XCTAssertGreaterThan(Set(try value(share)).count, 1)
        }
        let second = try Shamir.split(SecureBytes.copying(secret), shares: 3, threshold: 2)
        XCTAssertNotEqual(first[0].splitID, second[0].splitID)
        XCTAssertEqual(Set(first.map(\.splitID)).count, 1)
        XCTAssertNotEqual(try value(first[0]), try value(second[0]))
    }

    func testOneShareOfAThresholdTwoSplitIsUniformWhateverTheSecret() throws {
        // Every secret byte and every coefficient, through the real split: each share number
        // takes every value exactly once, so one share says nothing about the secret.
        for secretByte in UInt8.min...UInt8.max {
            var seen = [[Bool]](repeating: [Bool](repeating: false, count: 256), count: 3)
            for batch in 0..<4 {
                let coefficients = (0..<64).map { UInt8(batch * 64 + $0) }
                let shares = try Shamir.split(SecureBytes.copying([UInt8](repeating: secretByte, count: 64)),
                                              shares: 3, threshold: 2, splitID: [0, 0, 0, 0],
                                              coefficients: SecureBytes.copying(coefficients))
                for (index, share) in shares.enumerated() {
                    for y in try value(share) { seen[index][Int(y)] = true }
                }
            }
            for index in 0..<3 {
                XCTAssertTrue(seen[index].allSatisfy { $0 }, "secret \(secretByte), share \(index + 1)")
            }
        }
    }

    func testTwoSharesOfAThresholdThreeSplitAreUniformWhateverTheSecret() throws {
        // All 65,536 pairs of coefficients (64 per split, one per byte) for two secrets: the pair
        // of values of shares 1 and 3 takes each of the 65,536 possible values exactly once.
        for secretByte: UInt8 in [0x00, 0xA5] {
            var seen = [Bool](repeating: false, count: 65_536)
            for batch in 0..<1024 {
                var coefficients: [UInt8] = []
                for pair in (batch * 64)..<(batch * 64 + 64) {
                    coefficients += [UInt8(pair >> 8), UInt8(pair & 0xFF)]
                }
                let shares = try Shamir.split(SecureBytes.copying([UInt8](repeating: secretByte, count: 64)),
                                              shares: 3, threshold: 3, splitID: [0, 0, 0, 0],
                                              coefficients: SecureBytes.copying(coefficients))
                let first = try value(shares[0])
                let third = try value(shares[2])
                for i in 0..<64 {
                    seen[Int(first[i]) << 8 | Int(third[i])] = true
                }
            }
            XCTAssertEqual(seen.filter { $0 }.count, 65_536, "secret \(secretByte)")
        }
    }

    func testKMinusOneSharesLeaveEverySecretPossible() throws {
        // Given two shares of a threshold-3 split of one byte, each of the 256 secrets has its
        // own third share that completes them: nothing rules any secret out.
        let secret: UInt8 = 0x9D
        let shares = try Shamir.split(SecureBytes.copying([secret]), shares: 5, threshold: 3)
        let known = [shares[1], shares[3]]
        let knownPoints = try known.map { (x: $0.x, y: try value($0)[0]) }
        var completions = Set<UInt8>()
        for candidate in UInt8.min...UInt8.max {
            let y = lagrange([(x: 0, y: candidate)] + knownPoints, at: 5)
            completions.insert(y)
            let completing = try Shamir.Share(splitID: known[0].splitID, threshold: 3, x: 5,
                                              value: SecureBytes.copying([y]))
            XCTAssertEqual(try value(Shamir.combine(known + [completing])), [candidate])
            if candidate == secret {
                XCTAssertEqual(y, try value(shares[4])[0], "the real fifth share completes the real secret")
            }
        }
        XCTAssertEqual(completions.count, 256, "each secret needs a different third share")
    }

    func testTheSameShareTwiceIsRefused() throws {
        let shares = try Shamir.split(SecureBytes.copying([1, 2, 3]), shares: 3, threshold: 2)
        XCTAssertThrowsError(try Shamir.combine([shares[0], shares[0]])) {
            XCTAssertEqual($0 as? ShamirError, .duplicateShare(x: 1))
        }
        XCTAssertThrowsError(try Shamir.combine([shares[0], shares[1], shares[0]])) {
            XCTAssertEqual($0 as? ShamirError, .duplicateShare(x: 1))
        }
        // Read twice from its text, it is still the same share.
        let again = try ShareText.decode(ShareText.encode(shares[2]))
        XCTAssertThrowsError(try Shamir.validate([shares[2], again])) {
            XCTAssertEqual($0 as? ShamirError, .duplicateShare(x: 3))
            XCTAssertEqual("\($0)", "share number 3 was given twice; each share counts once")
        }
    }

    func testTwoDifferentSharesWithOneNumberAreRefused() throws {
        let shares = try Shamir.split(SecureBytes.copying([1, 2, 3]), shares: 3, threshold: 2)
        let forged = try Shamir.Share(splitID: shares[0].splitID, threshold: 2, x: 1,
                                      value: SecureBytes.copying(value(shares[0]).map { $0 ^ 1 }))
        XCTAssertThrowsError(try Shamir.combine([shares[0], forged])) {
            XCTAssertEqual($0 as? ShamirError, .conflictingShares(x: 1))
        }
    }

    func testAnExtraShareThatDisagreesIsRefused() throws {
        let shares = try Shamir.split(SecureBytes.copying([1, 2, 3]), shares: 3, threshold: 2)
        let damaged = try Shamir.Share(splitID: shares[0].splitID, threshold: 2, x: 3,
                                       value: SecureBytes.copying(value(shares[2]).map { $0 ^ 0x80 }))
        XCTAssertEqual(try value(Shamir.combine(shares)), [1, 2, 3])
        XCTAssertThrowsError(try Shamir.combine([shares[0], shares[1], damaged])) {
            XCTAssertEqual($0 as? ShamirError, .inconsistentShares(x: 3))
        }
    }

    func testSharesOfDifferentLengthsAreRefused() throws {
        let shares = try Shamir.split(SecureBytes.copying([1, 2, 3]), shares: 3, threshold: 2)
        let longer = try Shamir.Share(splitID: shares[0].splitID, threshold: 2, x: 2,
                                      value: SecureBytes.copying([1, 2, 3, 4]))
        XCTAssertThrowsError(try Shamir.combine([shares[0], longer])) {
            XCTAssertEqual($0 as? ShamirError, .mismatchedLengths(4, 3))
        }
    }

    func testSharesOfDifferentSplitsAreRefused() throws {
        let secret = try SecureBytes.copying(Sodium.randomBytes(32))
        let one = try Shamir.split(secret, shares: 3, threshold: 2)
        let other = try Shamir.split(secret, shares: 3, threshold: 2)
        XCTAssertThrowsError(try Shamir.combine([one[0], other[1]])) {
            XCTAssertEqual($0 as? ShamirError, .differentSplits(other[1].splitIDHex, one[0].splitIDHex))
            XCTAssertTrue("\($0)".hasPrefix("shares from different splits"))
        }
        // The same through the text form, which carries the split identifier.
        let texts = try [ShareText.encode(one[0]), ShareText.encode(other[1])]
        XCTAssertThrowsError(try Shamir.combine(texts.map(ShareText.decode))) {
            XCTAssertEqual($0 as? ShamirError, .differentSplits(other[1].splitIDHex, one[0].splitIDHex))
        }
        // A share claiming another threshold belongs to another split too.
        let otherThreshold = try Shamir.Share(splitID: one[0].splitID, threshold: 3, x: 2, value: SecureBytes.copying(value(one[1])))
        XCTAssertThrowsError(try Shamir.combine([one[0], otherThreshold])) {
            XCTAssertEqual($0 as? ShamirError, .differentSplits(one[0].splitIDHex, one[0].splitIDHex))
        }
    }

    func testFewerSharesThanTheThresholdAreRefused() throws {
        let shares = try Shamir.split(SecureBytes.copying([7]), shares: 5, threshold: 3)
        XCTAssertThrowsError(try Shamir.combine(Array(shares.prefix(2)))) {
            XCTAssertEqual($0 as? ShamirError, .notEnoughShares(have: 2, need: 3))
            XCTAssertEqual("\($0)", "2 of 3 shares given: 1 more needed")
        }
        XCTAssertNoThrow(try Shamir.validate(Array(shares.prefix(2))), "two compatible shares are fine to collect")
        XCTAssertThrowsError(try Shamir.combine([])) { XCTAssertEqual($0 as? ShamirError, .noShares) }
    }

    func testSplitRefusesImpossibleParameters() throws {
        let secret = try SecureBytes.copying([1, 2, 3])
        let cases: [(shares: Int, threshold: Int, error: ShamirError)] = [
            (3, 4, .invalidThreshold(4, shares: 3)),
            (3, 1, .invalidThreshold(1, shares: 3)),
            (3, 0, .invalidThreshold(0, shares: 3)),
            (1, 1, .invalidShareCount(1)),
            (256, 2, .invalidShareCount(256)),
        ]
        for entry in cases {
            XCTAssertThrowsError(try Shamir.split(secret, shares: entry.shares, threshold: entry.threshold)) {
                XCTAssertEqual($0 as? ShamirError, entry.error)
            }
        }
        for length in [0, 65] {
            XCTAssertThrowsError(try Shamir.split(SecureBytes.copying([UInt8](repeating: 1, count: length)), shares: 3, threshold: 2)) {
                XCTAssertEqual($0 as? ShamirError, .invalidSecretLength(length))
            }
        }
        XCTAssertEqual(try Shamir.split(SecureBytes.copying(Sodium.randomBytes(64)), shares: 2, threshold: 2).count, 2)
    }

    func testAShareNumberedZeroIsRefused() throws {
        XCTAssertThrowsError(try Shamir.Share(splitID: [1, 2, 3, 4], threshold: 2, x: 0, value: SecureBytes.copying([1]))) {
            guard case .invalidShare = $0 as? ShamirError else { return XCTFail("\($0)") }
        }
        // Even with a correct checksum, the text of a share numbered 0 is refused.
        let text = ShareText.encode(version: 1, threshold: 2, x: 0, splitID: [1, 2, 3, 4], value: [9])
        XCTAssertThrowsError(try ShareText.decode(text)) {
            XCTAssertEqual("\($0)", "not a valid share: its number is 0, which no share may have")
        }
        let thresholdOne = ShareText.encode(version: 1, threshold: 1, x: 1, splitID: [1, 2, 3, 4], value: [9])
        XCTAssertThrowsError(try ShareText.decode(thresholdOne)) {
            guard case .invalidShare = $0 as? ShamirError else { return XCTFail("\($0)") }
        }
    }

    func testAWipedShareCanNeitherBeCombinedNorWritten() throws {
        let shares = try Shamir.split(SecureBytes.copying([1, 2, 3]), shares: 2, threshold: 2)
        shares[0].wipe()
        XCTAssertThrowsError(try Shamir.combine(shares)) { XCTAssertEqual($0 as? CryptoError, .keyWiped) }
        XCTAssertThrowsError(try ShareText.encode(shares[0])) { XCTAssertEqual($0 as? CryptoError, .keyWiped) }
    }

    // MARK: - Text form

    func testCRC32MatchesTheStandardCheckValue() {
        XCTAssertEqual(ShareText.crc32(Array("123456789".utf8)), 0xCBF4_3926)
        XCTAssertEqual(ShareText.crc32([]), 0)
    }

    func testShareTextMatchesAReferenceEncoding() throws {
        // Computed with Python's zlib.crc32 and base64.b32encode mapped onto Crockford's alphabet.
        let vectors: [(text: String, threshold: Int, x: UInt8, splitID: [UInt8], value: [UInt8])] = [
            ("mlcs1-2-1-vtpv-xvym-xcbk-evr", 2, 1, [0xDE, 0xAD, 0xBE, 0xEF], [0xD4]),
            ("mlcs1-3-2-0410-6100-0410-6105-0r3g-g28a-1c60-t3gf-208h-44rm-2mb1-e60s-38dh-r78y-3yv5-zcb4",
             3, 2, [1, 2, 3, 4], Array(0..<32)),
        ]
        for vector in vectors {
            let share = try ShareText.decode(vector.text)
            XCTAssertEqual(share.threshold, vector.threshold)
            XCTAssertEqual(share.x, vector.x)
            XCTAssertEqual(share.splitID, vector.splitID)
            XCTAssertEqual(try value(share), vector.value)
            XCTAssertEqual(try ShareText.encode(share), vector.text)
        }
    }

    func testShareTextRoundTripsForEveryLengthAndNumber() throws {
        for length in 1...Shamir.maximumSecretLength {
            let secret = Sodium.randomBytes(length)
            let shares = try Shamir.split(SecureBytes.copying(secret), shares: 3, threshold: 2)
            let texts = try shares.map(ShareText.encode)
            for text in texts {
                XCTAssertTrue(text.hasPrefix("mlcs1-2-"), text)
                let groups = text.split(separator: "-").dropFirst(3)
                XCTAssertTrue(groups.dropLast().allSatisfy { $0.count == ShareText.groupLength }, text)
                XCTAssertEqual(groups.joined().count, ShareText.base32Length(4 + length + 4))
                XCTAssertEqual(text, text.lowercased())
            }
            let read = try texts.map(ShareText.decode)
            XCTAssertEqual(read.map(\.x), [1, 2, 3])
            XCTAssertEqual(try value(Shamir.combine([read[2], read[0]])), secret)
        }
        let many = try Shamir.split(SecureBytes.copying([0x5A]), shares: 255, threshold: 2)
        for share in many {
            let read = try ShareText.decode(ShareText.encode(share))
            XCTAssertEqual(read.x, share.x)
            XCTAssertEqual(read.threshold, 2)
            XCTAssertEqual(try value(read), try value(share))
        }
        XCTAssertTrue(try ShareText.encode(many[254]).hasPrefix("mlcs1-2-255-"))
    }

    func testShareTextIgnoresCaseSpacesDashesAndLineBreaks() throws {
        let secret = Sodium.randomBytes(32)
        let shares = try Shamir.split(SecureBytes.copying(secret), shares: 3, threshold: 2)
        let text = try ShareText.encode(shares[1])
        let groups = text.split(separator: "-").map(String.init)
        let header = groups[0..<3].joined(separator: "-")
        let body = groups[3...].joined(separator: "-")
        let wrapped: String = groups[0..<3].joined(separator: " ") + "\n"
            + groups[3..<11].joined(separator: "-") + "\r\n" + groups[11...].joined(separator: "  ")
        let variants: [String] = [
            text.uppercased(),
            "  " + text + "\n",
            groups.joined(separator: " "),
            header + "-" + groups[3...].joined(),
            wrapped,
            groups.joined(separator: "--"),
            groups.joined(separator: "\u{2013}"),
            "\t" + groups.joined(separator: "- ") + "-",
        ]
        for variant in variants {
            let read = try ShareText.decode(variant)
            XCTAssertEqual(read.x, 2)
            XCTAssertEqual(try value(Shamir.combine([shares[0], read])), secret, variant)
        }
        // Letters that look like digits read as those digits.
        for (zero, one) in [("O", "l"), ("o", "i"), ("o", "I"), ("O", "L")] as [(Character, Character)] {
            let lookalikes = String(body.map { $0 == "0" ? zero : $0 == "1" ? one : $0 })
            XCTAssertEqual(try value(ShareText.decode(header + "-" + lookalikes)), try value(shares[1]), lookalikes)
        }
    }

    func testEverySingleCharacterChangeIsCaught() throws {
        // Lengths 1 to 5 put the end of the value at each of the five bit offsets within a
        // character; 32 and 64 are the lengths of real keys. Threshold 10 and number 12 give
        // two-digit header fields.
        let alphabet = Array("0123456789abcdefghjkmnpqrstvwxyz")
        for length in [1, 2, 3, 4, 5, 32, 64] {
            let shares = try Shamir.split(SecureBytes.copying(Sodium.randomBytes(length)), shares: 12, threshold: 10)
            let text = Array(try ShareText.encode(shares[11]))
            XCTAssertTrue(String(text).hasPrefix("mlcs1-10-12-"))
            let bodyStart = "mlcs1-10-12-".count
            for position in text.indices where text[position] != "-" {
                for replacement in alphabet where replacement != text[position] {
                    var changed = text
                    changed[position] = replacement
                    do {
                        let read = try ShareText.decode(String(changed))
                        XCTFail("\(String(changed)) was read as share \(read.x)")
                    } catch let error as ShamirError {
                        if position >= bodyStart {
                            XCTAssertEqual(error, .checksumMismatch, "position \(position)")
                        }
                    }
                }
            }
            // Two adjacent characters swapped are caught too.
            for position in bodyStart..<(text.count - 1) where text[position] != text[position + 1] && text[position] != "-" && text[position + 1] != "-" {
                var swapped = text
                swapped.swapAt(position, position + 1)
                XCTAssertThrowsError(try ShareText.decode(String(swapped))) {
                    XCTAssertEqual($0 as? ShamirError, .checksumMismatch)
                }
            }
        }
    }

    func testShareTextErrorsSayWhatIsWrong() throws {
        let shares = try Shamir.split(SecureBytes.copying(Sodium.randomBytes(32)), shares: 3, threshold: 2)
        let text = try ShareText.encode(shares[0])
        let body = String(text.dropFirst("mlcs1-2-1-".count))

        func error(_ input: String) -> ShamirError? {
            do {
                _ = try ShareText.decode(input)
                return nil
            } catch {
                return error as? ShamirError
            }
        }
        XCTAssertEqual(error(""), .notAShare)
        XCTAssertEqual(error("hello world"), .notAShare)
        XCTAssertEqual(error("héllo"), .notAShare)
        XCTAssertEqual(error("mlcs-2-1-" + body), .notAShare)
        XCTAssertTrue("\(ShamirError.notAShare)".hasPrefix("not an mlcred share"))
        XCTAssertEqual(error("mlcs2-2-1-" + body), .unsupportedVersion("2"))
        XCTAssertTrue("\(ShamirError.unsupportedVersion("2"))".hasPrefix("unsupported version"))
        XCTAssertEqual(error("mlcs1-2-1-u" + body.dropFirst()), .invalidCharacter("u", position: 11))
        XCTAssertEqual(error("mlcs1-2-1-" + body.dropFirst() + "é"), .invalidCharacter("é", position: text.count))
        XCTAssertEqual(error("mlcs1-2-1-" + body.dropLast()), .checksumMismatch)
        XCTAssertEqual(error("mlcs1-2-1-" + body + "a"), .checksumMismatch)
        XCTAssertTrue("\(ShamirError.checksumMismatch)".hasPrefix("checksum mismatch: a character was mistyped"))
        guard case .malformed(let early) = error("mlcs1-2") else { return XCTFail("mlcs1-2 accepted") }
        XCTAssertTrue(early.contains("ends early"))
        guard case .malformed(let threshold) = error("mlcs1-x-1-" + body) else { return XCTFail("threshold x accepted") }
        XCTAssertTrue(threshold.contains("the threshold"))
        guard case .malformed(let number) = error("mlcs1-2-256-" + body) else { return XCTFail("number 256 accepted") }
        XCTAssertTrue(number.contains("the share number"))
        guard case .malformed(let short) = error("mlcs1-2-1-0000-0000") else { return XCTFail("short share accepted") }
        XCTAssertTrue(short.contains("too short"))
        guard case .malformed(let long) = error("mlcs1-2-1-" + String(repeating: "0", count: 200)) else { return XCTFail("long share accepted") }
        XCTAssertTrue(long.contains("too long"))
    }

    // MARK: - Helpers

    private func value(_ share: Shamir.Share) throws -> [UInt8] {
        try share.value.withUnsafeBytes { Array($0) }
    }

    private func value(_ secret: SecureBytes) throws -> [UInt8] {
        try secret.withUnsafeBytes { Array($0) }
    }

    /// Every subset of `items` (2^n of them, the empty one included).
    private func subsets<T>(of items: [T]) -> [[T]] {
        (0..<(1 << items.count)).map { mask in
            items.indices.filter { mask & (1 << $0) != 0 }.map { items[$0] }
        }
    }

    /// The polynomial through `points` evaluated at `x`, by Lagrange interpolation: a reference
    /// written here from the field operations alone.
    private func lagrange(_ points: [(x: UInt8, y: UInt8)], at x: UInt8) -> UInt8 {
        var sum: UInt8 = 0
        for (j, point) in points.enumerated() {
            var weight: UInt8 = 1
            for (m, other) in points.enumerated() where m != j {
                weight = GF256.multiply(weight, GF256.multiply(x ^ other.x, GF256.inverse(point.x ^ other.x)))
            }
            sum ^= GF256.multiply(weight, point.y)
        }
        return sum
    }
}
