import ArgumentParser
import MLCredAPI

/// `mlcred jwks`: the public keys a verifier elsewhere needs to check the JWTs jwt grants issue.
struct Jwks: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "jwks",
        abstract: "Print the public JWKS (every jwt-signer's Ed25519 key) for verifiers elsewhere.",
        discussion: """
            The JSON Web Key Set of GET /v1/jwks, as a verifier reads it ({"keys": [...]},
            one OKP/Ed25519 key per jwt-signer secret, its kid in every JWT's header). Any
            caller may print it: public keys only. Text and --json print the same JSON. Needs
            the vault unsealed.

            Examples:
              mlcred jwks > /srv/mlflow/jwks.json
              mlcred jwks | python -c 'import json,sys; print([k["kid"] for k in json.load(sys.stdin)["keys"]])'
            """)

    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        let keys: JWKSet = try connection.client().call("GET", "/v1/jwks")
        // JSON is the natural form of a key set: both forms print it, so a file written from
        // either is what a verifier loads.
        try Terminal.printJSON(keys)
    }
}
