import Foundation
import XCTest
@testable import MLCredPolicy

final class PolicyTests: XCTestCase {
    var directory = ""

    override func setUpWithError() throws {
        directory = NSTemporaryDirectory() + "mlcred-policy-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory + "/tests", withIntermediateDirectories: true)
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: directory)
    }

    func write(_ files: [String: String]) throws {
        for (name, text) in files {
            let path = directory + "/" + name
            try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try text.write(toFile: path, atomically: true, encoding: .utf8)
        }
    }

    func diagnostics(_ files: [String: String]) throws -> [String] {
        try write(files)
        do {
            _ = try PolicyLoader.load(directory: directory)
            return []
        } catch let error as PolicyLoadError {
            return error.diagnostics.map(\.description)
        }
    }

    func testDurations() {
        XCTAssertEqual(PolicyDuration.parse("90s"), 90)
        XCTAssertEqual(PolicyDuration.parse("1h30m"), 5400)
        XCTAssertEqual(PolicyDuration.parse("2d"), 172_800)
        for bad in ["", "10", "h", "1x", "-1h", "0s", "1h 30m", "99999999999999999999h", "9223372036854775807s1s", "9223372036854775s"] {
            XCTAssertNil(PolicyDuration.parse(bad), bad)
        }
        XCTAssertEqual(PolicyDuration.format(5400), "1h30m")
    }

    func testAValidRoleLoadsWithDefaults() throws {
        try write(["team/train.toml": """
            name = "train"
            principals = ["group:ml", "uid:1001", "user:alice", "gid:50"]
            [[grant]]
            secret = "tracking"
            type = "jwt"
            audience = "mlflow"
            claims = { scope = "w", nested = { a = [1, 2] } }
            """, "tests/case.toml": "this is not a role = [", "README.md": "ignored"])
        let set = try PolicyLoader.load(directory: directory)
        let role = try XCTUnwrap(set.roles["train"])
        XCTAssertEqual(role.ttlSeconds, 3600)
        XCTAssertEqual(role.maxTTLSeconds, 3600)
        XCTAssertEqual(role.file, "team/train.toml")
        XCTAssertEqual(role.grants.first?.name, "tracking")
        XCTAssertEqual(role.grants.first?.claims["scope"], .string("w"))
        XCTAssertEqual(role.principals, [.group("ml"), .uid(1001), .user("alice"), .gid(50)])
    }

    func testEveryErrorIsReportedAtItsLineAllAtOnce() throws {
        let found = try diagnostics([
            "a.toml": "name = \"a\"\nprincipals = [\"uid:0\"]\n\n[[grant]]\nsecret = \"t\"\ntype = \"jwt\"\naudience = \"x\"\nclaims = { sub = \"me\" }\n",
            "b.toml": "name = \"b\"\nprincipals = [\"uid:0\"]\n[[grant]]\nsecret = \"t\"\ntype = \"jwt\"\n",
            "c.toml": "name = \"c\"\nprincipals = [\"uid:0\"]\n[[grant]]\nsecret = \"t\"\ntype = \"static\"\nextra = 1\n",
            "d.toml": "name = \"d\"\nprincipals = [\"uid:0\"\n",
            "e.toml": "name = \"e\"\nprincipals = [\"uid:0\"]\n[[grant]]\nsecret = \"aws\"\ntype = \"aws-assume-role\"\nrole_arn = \"arn:aws:iam::1:role/x\"\nsession_policy_file = \"missing.json\"\n",
        ])
        XCTAssertTrue(found.contains { $0.hasPrefix("a.toml:8: claim 'sub' is set by mlcred") }, "\(found)")
        XCTAssertTrue(found.contains { $0.hasPrefix("b.toml:3: jwt grant needs 'audience'") }, "\(found)")
        XCTAssertTrue(found.contains { $0.hasPrefix("c.toml:6: unknown key 'extra'") }, "\(found)")
        XCTAssertTrue(found.contains { $0.hasPrefix("d.toml:2:14: TOML syntax: unclosed array") }, "\(found)")
        XCTAssertTrue(found.contains { $0.hasPrefix("e.toml:7: session_policy_file 'missing.json' does not exist") }, "\(found)")
    }

    /// Lines come from the parser, so any way of writing a grant points at the right one.
    func testDiagnosticsPointAtGrantsHoweverTheyAreWritten() throws {
        let found = try diagnostics([
            "inline.toml": "name = \"i\"\nprincipals = [\n  \"uid:0\",\n]\ngrant = [\n  { secret = \"t\", type = \"static\" },\n  { secret = \"u\", type = \"jwt\" },\n]\n",
            "dotted.toml": "name = \"d\"\nprincipals = [\"uid:0\"]\n[[grant]]\nsecret = \"t\"\ntype = \"jwt\"\naudience = \"a\"\n\nclaims.sub = \"me\"\n",
        ])
        XCTAssertTrue(found.contains { $0.hasPrefix("inline.toml:7: jwt grant needs 'audience'") }, "\(found)")
        XCTAssertTrue(found.contains { $0.hasPrefix("dotted.toml:8: claim 'sub' is set by mlcred") }, "\(found)")
    }

    func testAWSGrantsRefuseEnvTablesAndPostgresCreateMustMakeTheRole() throws {
        let found = try diagnostics([
            "aws.toml": "name = \"aws\"\nprincipals = [\"uid:0\"]\n[[grant]]\nsecret = \"k\"\ntype = \"aws-session-token\"\nenv = { KEY = \"access_key_id\" }\n",
            "pg.toml": "name = \"pg\"\nprincipals = [\"uid:0\"]\n[[grant]]\nsecret = \"db\"\ntype = \"postgres-role\"\ncreate = [\"CREATE ROLE fixed\"]\n",
        ])
        XCTAssertTrue(found.contains { $0.hasPrefix("aws.toml:6: aws grants take no 'env' table") }, "\(found)")
        XCTAssertTrue(found.contains { $0.hasPrefix("pg.toml:6: create statements must make the role {{name}}") }, "\(found)")
    }

    func testRiskyDynamicGrantsAreRefusedAtTheirLines() throws {
        let create = "create = [\"CREATE ROLE \\\"{{name}}\\\" LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'\"]"
        let found = try diagnostics([
            "noexpiry.toml": "name = \"a\"\nprincipals = [\"uid:0\"]\n[[grant]]\nsecret = \"db\"\ntype = \"postgres-role\"\ncreate = [\"CREATE ROLE \\\"{{name}}\\\" LOGIN\"]\n",
            "empty.toml": "name = \"b\"\nprincipals = [\"uid:0\"]\n[[grant]]\nsecret = \"db\"\ntype = \"postgres-role\"\ncreate = []\n",
            "bogus.toml": "name = \"c\"\nprincipals = [\"uid:0\"]\n[[grant]]\nsecret = \"db\"\ntype = \"postgres-role\"\n\(create)\nrevoke = [\"DROP ROLE \\\"{{bogus}}\\\"\"]\n",
            "fed.toml": "name = \"d\"\nprincipals = [\"uid:0\"]\n[[grant]]\nsecret = \"k\"\ntype = \"aws-federation-token\"\n",
            "nameonly.toml": "name = \"g\"\nprincipals = [\"uid:0\"]\n[[grant]]\nsecret = \"db\"\ntype = \"postgres-role\"\ncreate = [\"GRANT r TO \\\"{{name}}\\\"\", \"SELECT '{{expiration}}'\"]\n",
            "phi.toml": "name = \"e\"\nphi = true\nprincipals = [\"uid:0\"]\n[[grant]]\nsecret = \"k\"\ntype = \"aws-session-token\"\n",
            "arn.toml": "name = \"f\"\nprincipals = [\"uid:0\"]\n[[grant]]\nsecret = \"k\"\ntype = \"aws-assume-role\"\nrole_arn = \"not-an-arn\"\n",
        ])
        XCTAssertTrue(found.contains { $0.hasPrefix("noexpiry.toml:6: create statements must set VALID UNTIL '{{expiration}}'") }, "\(found)")
        // Mentioning the placeholders is not enough: a CREATE ROLE of {{name}} and a VALID UNTIL.
        XCTAssertTrue(found.contains { $0.hasPrefix("nameonly.toml:6: create statements must make the role {{name}}") }, "\(found)")
        XCTAssertTrue(found.contains { $0.hasPrefix("nameonly.toml:6: create statements must set VALID UNTIL") }, "\(found)")
        XCTAssertTrue(found.contains { $0.hasPrefix("empty.toml:6: 'create' must list at least one statement") }, "\(found)")
        XCTAssertTrue(found.contains { $0.hasPrefix("bogus.toml:7: revoke statement 1: unknown placeholder {{bogus}}") }, "\(found)")
        XCTAssertTrue(found.contains { $0.hasPrefix("fed.toml:3: aws-federation-token grant needs 'session_policy'") }, "\(found)")
        XCTAssertTrue(found.contains { $0.hasPrefix("phi.toml:4: aws-session-token grant 'k' in phi role") }, "\(found)")
        XCTAssertTrue(found.contains { $0.hasPrefix("arn.toml:6: 'role_arn' must be a role ARN") }, "\(found)")
    }

    func testSessionPoliciesAreSentWithoutBlanksAndMustFitWhatSTSTakes() throws {
        XCTAssertEqual(SessionPolicyText.minified("{\n  \"Version\": \"2012-10-17\",\t\"Sid\" : \"a \\\" b\\\\\" }"),
                       "{\"Version\":\"2012-10-17\",\"Sid\":\"a \\\" b\\\\\"}")
        let pretty = "{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": [{\"Effect\": \"Allow\", \"Action\": \"s3:GetObject\", \"Resource\": \"arn:aws:s3:::b/*\"}]\n}\n"
        let huge = "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"s3:GetObject\",\"Resource\":\"arn:aws:s3:::"
            + String(repeating: "x", count: 2100) + "\"}]}"
        let grant = "[[grant]]\nsecret = \"k\"\ntype = \"aws-assume-role\"\nrole_arn = \"arn:aws:iam::1:role/r\"\nsession_policy_file = "
        try write(["aws/pretty.json": pretty, "aws/huge.json": huge, "aws/wide.json": "{\"Sid\": \"\u{2013}\"}",
                   "ok.toml": "name = \"ok\"\nprincipals = [\"uid:0\"]\n\(grant)\"aws/pretty.json\"\n"])
        let loaded = try PolicyLoader.load(directory: directory)
        XCTAssertEqual(loaded.roles["ok"]?.grants.first?.sessionPolicy,
                       "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"s3:GetObject\",\"Resource\":\"arn:aws:s3:::b/*\"}]}")
        let found = try diagnostics([
            "huge.toml": "name = \"huge\"\nprincipals = [\"uid:0\"]\n\(grant)\"aws/huge.json\"\n",
            "wide.toml": "name = \"wide\"\nprincipals = [\"uid:0\"]\n\(grant)\"aws/wide.json\"\n",
        ])
        XCTAssertTrue(found.contains { $0.hasPrefix("huge.toml:7: session policy is 2208 characters without whitespace; AWS STS accepts at most 2048") }, "\(found)")
        XCTAssertTrue(found.contains { $0.hasPrefix("wide.toml:7: session policy has the character U+2013") }, "\(found)")
    }

    func testPostgresStatementsMayNotEndTheTransactionOrMisquotePlaceholders() {
        let create = PostgresStatementRules.createPlaceholders
        XCTAssertNil(PostgresStatementRules.problem(in: "CREATE ROLE \"{{name}}\" PASSWORD '{{password}}' VALID UNTIL {{expiration}}", placeholders: create))
        XCTAssertNil(PostgresStatementRules.problem(in: "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{{name}}'", placeholders: create))
        XCTAssertTrue(PostgresStatementRules.createsRole("create  USER\n\"{{name}}\" LOGIN"))
        XCTAssertTrue(PostgresStatementRules.createsRole("/* made per lease */ CREATE ROLE {{name}}"))
        XCTAssertFalse(PostgresStatementRules.createsRole("CREATE TABLE \"{{name}}\" (x int)"))
        XCTAssertTrue(PostgresStatementRules.setsExpiry("ALTER ROLE \"{{name}}\" VALID\n  UNTIL '{{expiration}}'"))
        XCTAssertFalse(PostgresStatementRules.setsExpiry("COMMENT ON ROLE \"{{name}}\" IS '{{expiration}}'"))
        for bad in ["COMMIT", "  commit;", "-- x\nROLLBACK", "/* c */ BEGIN", "SET ROLE postgres", "savepoint a", "END",
                    "CREATE ROLE \"{{password}}\" LOGIN", "GRANT r TO \"{{name}}_ro\"", "ALTER ROLE x PASSWORD 'x{{password}}y'",
                    "SELECT {{other}}"] {
            XCTAssertNotNil(PostgresStatementRules.problem(in: bad, placeholders: create), bad)
        }
    }

    func testEvaluatorIsDenyByDefaultAndExplainsItself() throws {
        try write([
            "r.toml": "name = \"r\"\nprincipals = [\"group:ml\", \"user:alice\"]\nenvironments = [\"prod\"]\n",
            "p.toml": "name = \"p\"\nphi = true\nprincipals = [\"group:ml\"]\n",
        ])
        let set = try PolicyLoader.load(directory: directory)
        let bob = PolicySubject(uid: 1002, user: "bob", gid: 1002, groups: [(1002, "bob"), (3000, "ml")], unit: nil)
        let eve = PolicySubject(uid: 1003, user: "eve", gid: 1003, groups: [(1003, "eve")], unit: nil)
        var decision = PolicyEvaluator.decide(role: "r", in: set, subject: bob, environment: "prod", phiDaemon: false)
        XCTAssertTrue(decision.allowed)
        XCTAssertTrue(decision.summary.contains("group:ml"))
        decision = PolicyEvaluator.decide(role: "r", in: set, subject: eve, environment: "prod", phiDaemon: false)
        XCTAssertFalse(decision.allowed)
        decision = PolicyEvaluator.decide(role: "r", in: set, subject: bob, environment: "dev", phiDaemon: false)
        XCTAssertFalse(decision.allowed)
        XCTAssertTrue(decision.summary.contains("limited to environments prod"))
        XCTAssertFalse(PolicyEvaluator.decide(role: "p", in: set, subject: bob, environment: "dev", phiDaemon: false).allowed)
        XCTAssertTrue(PolicyEvaluator.decide(role: "p", in: set, subject: bob, environment: "dev", phiDaemon: true).allowed)
        XCTAssertFalse(PolicyEvaluator.decide(role: "nope", in: set, subject: bob, environment: "dev", phiDaemon: true).allowed)
        XCTAssertEqual(PolicyEvaluator.assumableRoles(in: set, subject: bob, environment: "prod", phiDaemon: true), ["p", "r"])
    }

    func testTheExamplePoliciesAreValid() throws {
        let examples = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("policies").path
        let set = try PolicyLoader.load(directory: examples)
        XCTAssertEqual(set.roles["train-phi"]?.phi, true)
        XCTAssertNotNil(set.roles["demo"])
    }
}

final class GrantSchemaTests: XCTestCase {
    func testEveryGrantTypeHasExactlyOneSchema() {
        for type in GrantType.allCases {
            let owners = GrantSchemas.all.filter { $0.types.contains(type) }
            XCTAssertEqual(owners.count, 1, "\(type.rawValue)")
        }
    }

    func testSchemasOwnTheirKeysAndPhiRules() {
        XCTAssertEqual(GrantSchemas.schema(for: .jwt).keys(for: .jwt), ["audience", "claims"])
        XCTAssertTrue(GrantSchemas.schema(for: .awsAssumeRole).keys(for: .awsAssumeRole).contains("role_arn"))
        XCTAssertFalse(GrantSchemas.schema(for: .awsSessionToken).keys(for: .awsSessionToken).contains("role_arn"))
        XCTAssertFalse(GrantSchemas.schema(for: .awsFederationToken).acceptsEnvTable)
        XCTAssertTrue(GrantSchemas.schema(for: .postgresRole).acceptsEnvTable)
        let staticGrant = Grant(name: "hf", secret: "hf", type: .static, line: 1)
        XCTAssertNotNil(GrantSchemas.schema(for: .static).phiProblem(staticGrant))
        XCTAssertNil(GrantSchemas.schema(for: .jwt).phiProblem(Grant(name: "t", secret: "t", type: .jwt, line: 1)))
    }
}
