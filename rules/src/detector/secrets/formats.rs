//! The secret formats: ids, token alphabets and checks, and the tables that map an
//! automaton anchor (or an assigned value's prefix) to the handler that validates it.

use super::assigned::*;

macro_rules! formats {
    ($($v:ident = $id:literal),* $(,)?) => {
        #[derive(Clone, Copy, PartialEq, Eq, Debug)]
        #[repr(u16)]
        pub(super) enum Format { $($v),* }
        pub(super) const IDS: &[&str] = &[$($id),*];
    };
}

formats! {
    AwsAccessKeyId = "secret.aws_access_key_id",
    AwsSecretAccessKey = "secret.aws_secret_access_key",
    GithubToken = "secret.github_token",
    GithubFineGrained = "secret.github_fine_grained",
    Gitlab = "secret.gitlab",
    Openai = "secret.openai",
    Anthropic = "secret.anthropic",
    Openrouter = "secret.openrouter",
    SlackToken = "secret.slack_token",
    SlackWebhook = "secret.slack_webhook",
    Stripe = "secret.stripe",
    GoogleApiKey = "secret.google_api_key",
    GoogleOauth = "secret.google_oauth",
    GcpServiceAccount = "secret.gcp_service_account",
    AzureStorageKey = "secret.azure_storage_key",
    AzureSharedAccessKey = "secret.azure_shared_access_key",
    AzureAdClientSecret = "secret.azure_ad_client_secret",
    PrivateKey = "secret.private_key",
    Jwt = "secret.jwt",
    Twilio = "secret.twilio",
    Sendgrid = "secret.sendgrid",
    Mailgun = "secret.mailgun",
    Npm = "secret.npm",
    Pypi = "secret.pypi",
    DockerHub = "secret.docker_hub",
    HuggingFace = "secret.hugging_face",
    Databricks = "secret.databricks",
    Shopify = "secret.shopify",
    Square = "secret.square",
    Heroku = "secret.heroku",
    Digitalocean = "secret.digitalocean",
    Atlassian = "secret.atlassian",
    Postman = "secret.postman",
    Linear = "secret.linear",
    Doppler = "secret.doppler",
    Vault = "secret.vault",
    Age = "secret.age",
    Grafana = "secret.grafana",
    NewRelic = "secret.new_relic",
    Sentry = "secret.sentry",
    Datadog = "secret.datadog",
    Pulumi = "secret.pulumi",
    TerraformCloud = "secret.terraform_cloud",
    Mailchimp = "secret.mailchimp",
    TelegramBot = "secret.telegram_bot",
    DiscordWebhook = "secret.discord_webhook",
    DiscordBotToken = "secret.discord_bot_token",
    Planetscale = "secret.planetscale",
    Supabase = "secret.supabase",
    Flyio = "secret.flyio",
    Alibaba = "secret.alibaba",
    Dropbox = "secret.dropbox",
    Facebook = "secret.facebook",
    Twitch = "secret.twitch",
    Okta = "secret.okta",
    Cloudflare = "secret.cloudflare",
    Groq = "secret.groq",
    Replicate = "secret.replicate",
    Perplexity = "secret.perplexity",
    Xai = "secret.xai",
    Mistral = "secret.mistral",
    Cohere = "secret.cohere",
    Langsmith = "secret.langsmith",
    Rubygems = "secret.rubygems",
    Tailscale = "secret.tailscale",
    Mapbox = "secret.mapbox",
    Sonarqube = "secret.sonarqube",
    Generic = "secret.generic",
}

/// Alphabets of token bodies.
#[derive(Clone, Copy, Debug)]
pub(super) enum Alphabet {
    Alnum,
    /// base64url: `[A-Za-z0-9_-]`
    Url,
    /// `[A-Za-z0-9_.-]`
    UrlDot,
    HexL,
    Hex,
    /// RFC 4648 base32 upper case, as used by AWS key ids.
    B32,
    UpDig,
    Letters,
    LowDig,
    /// `[A-Za-z0-9_]`
    AlnumU,
    /// `[a-f0-9-]`
    HexDash,
    /// `[A-Za-z0-9_=-]`
    UrlEq,
    /// `[A-Za-z0-9+/=_]`
    B64Eq,
    /// `[a-z0-9_]`
    LowDigU,
    /// `[A-Za-z0-9-]`
    AlnumDash,
}

pub(super) fn in_alphabet(a: Alphabet, c: u8) -> bool {
    let hexl = c.is_ascii_digit() || (b'a'..=b'f').contains(&c);
    match a {
        Alphabet::Alnum => c.is_ascii_alphanumeric(),
        Alphabet::Url => c.is_ascii_alphanumeric() || c == b'_' || c == b'-',
        Alphabet::UrlDot => c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.'),
        Alphabet::HexL => hexl,
        Alphabet::Hex => c.is_ascii_hexdigit(),
        Alphabet::B32 => c.is_ascii_uppercase() || (b'2'..=b'7').contains(&c),
        Alphabet::UpDig => c.is_ascii_uppercase() || c.is_ascii_digit(),
        Alphabet::Letters => c.is_ascii_alphabetic(),
        Alphabet::LowDig => c.is_ascii_lowercase() || c.is_ascii_digit(),
        Alphabet::AlnumU => c.is_ascii_alphanumeric() || c == b'_',
        Alphabet::HexDash => hexl || c == b'-',
        Alphabet::UrlEq => c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'='),
        Alphabet::B64Eq => c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'=' | b'_'),
        Alphabet::LowDigU => c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_',
        Alphabet::AlnumDash => c.is_ascii_alphanumeric() || c == b'-',
    }
}

/// Extra structural checks on a prefix-anchored token body.
#[derive(Clone, Copy, Debug)]
pub(super) enum Check {
    No,
    /// GitHub classic / npm: last 6 chars are base62(CRC32(the 30 preceding chars)).
    Crc,
    /// At least two of upper, lower, digit: rejects `sk_test_aaaaaaaa…`-style filler.
    Cls2,
    Cls3,
    /// bech32 checksum over the whole key (age).
    Bech32,
    /// Body is base64 of a JSON object (`{"` encodes to `eyJ`).
    EyJ,
    /// PyPI macaroons always encode the `pypi.org` / `test.pypi.org` location first.
    Pypi,
    /// Exactly one separator, at this index.
    SepAt(u8, u8),
    /// Body starts with these bytes.
    Starts(&'static str),
    /// LangSmith: `pt_`/`sk_` + 32 hex + `_` + 10 hex.
    Langsmith,
    /// Tailscale: `kind-id-secret`.
    Tailscale,
    /// Mapbox: `<base64 JSON>.<signature of at least 20>`.
    Mapbox,
}

#[derive(Clone, Copy, Debug)]
pub(super) struct Token {
    pub(super) f: Format,
    pub(super) a: Alphabet,
    pub(super) min: u16,
    pub(super) max: u16,
    pub(super) check: Check,
}

/// What to do with an automaton match.
#[derive(Clone, Copy, Debug)]
pub(super) enum Handler {
    Token(Token),
    Sk,
    OpenaiMarker,
    Xox,
    Eaa,
    Pem,
    Jwt,
    SlackHook,
    DiscordHook,
    GcpSa,
    /// Anchor followed by one of these prefixes, then the token body.
    Sub(&'static [(&'static str, Token)]),
    /// Anchor preceded by one of these prefixes; the token starts at the prefix.
    Back(&'static [(&'static str, Token)]),
    Terraform,
}

pub(super) const fn handler(f: Format, a: Alphabet, min: u16, max: u16, check: Check) -> Handler {
    Handler::Token(Token {
        f,
        a,
        min,
        max,
        check,
    })
}

pub(super) const fn fixed(f: Format, a: Alphabet, n: u16) -> Handler {
    handler(f, a, n, n, Check::No)
}

pub(super) const fn token(f: Format, a: Alphabet, min: u16, max: u16, check: Check) -> Token {
    Token {
        f,
        a,
        min,
        max,
        check,
    }
}

pub(super) const AWS_ID: Token = token(Format::AwsAccessKeyId, Alphabet::B32, 16, 16, Check::No);
pub(super) const GH: Token = token(Format::GithubToken, Alphabet::Alnum, 36, 36, Check::Crc);
pub(super) const GITLAB: Token = token(Format::Gitlab, Alphabet::UrlDot, 20, 300, Check::Cls2);
pub(super) const STRIPE: Token = token(Format::Stripe, Alphabet::Alnum, 24, 247, Check::Cls2);
pub(super) const DO: Token = token(Format::Digitalocean, Alphabet::HexL, 64, 64, Check::No);
pub(super) const SHOPIFY: Token = token(Format::Shopify, Alphabet::Hex, 32, 32, Check::No);
pub(super) const DOCKER: Token = token(Format::DockerHub, Alphabet::Url, 27, 36, Check::Cls2);
pub(super) const DOPPLER: Token = token(Format::Doppler, Alphabet::Alnum, 43, 43, Check::No);
pub(super) const VAULT: Token = token(Format::Vault, Alphabet::Url, 24, 512, Check::Cls2);
pub(super) const SONAR: Token = token(Format::Sonarqube, Alphabet::HexL, 40, 40, Check::No);
pub(super) const PSCALE: Token = token(Format::Planetscale, Alphabet::UrlDot, 32, 64, Check::Cls2);
pub(super) const HF: Token = token(Format::HuggingFace, Alphabet::Letters, 34, 34, Check::No);
pub(super) const NEWRELIC_INSERT: Token =
    token(Format::NewRelic, Alphabet::Url, 32, 32, Check::Cls2);
pub(super) const MAPBOX: Token = token(Format::Mapbox, Alphabet::UrlDot, 40, 400, Check::Mapbox);
/// Dropbox: the anchor is the token's own start (`sl.B…`, `sl.u.…`), so the body includes it.
pub(super) const DROPBOX: Token = token(Format::Dropbox, Alphabet::UrlDot, 130, 2048, Check::Cls3);
pub(super) const GRAFANA_CLOUD: Token =
    token(Format::Grafana, Alphabet::B64Eq, 32, 1024, Check::EyJ);

/// Anchors in priority order: leftmost-first prefers the earlier entry when two start at the
/// same byte. Teddy, the SIMD prefilter that makes clean text cheap, is only used for at most
/// 64 patterns, so related prefixes share one anchor (`shp` + `at_`/`ss_`…, `_v1_` preceded by
/// `dop`/`doo`/`dor`) and rarer formats are only looked for in assigned values (`SECONDARY`).
pub(super) const ANCHORS: &[(&str, Handler)] = &[
    ("AKIA", Handler::Token(AWS_ID)),
    ("ASIA", Handler::Token(AWS_ID)),
    ("ghp_", Handler::Token(GH)),
    ("gho_", Handler::Token(GH)),
    ("ghu_", Handler::Token(GH)),
    ("ghs_", Handler::Token(GH)),
    ("ghr_", Handler::Token(GH)),
    (
        "github_pat_",
        handler(
            Format::GithubFineGrained,
            Alphabet::AlnumU,
            82,
            82,
            Check::SepAt(b'_', 22),
        ),
    ),
    ("glpat-", Handler::Token(GITLAB)),
    ("sk-proj-", Handler::Sk),
    ("sk-ant-", Handler::Sk),
    ("sk-or-", Handler::Sk),
    // Every OpenAI key embeds base64("OpenAI"); this finds service-account, admin and legacy
    // keys without spending a pattern on each `sk-…-` prefix.
    ("T3BlbkFJ", Handler::OpenaiMarker),
    ("xoxb", Handler::Xox),
    ("xoxp", Handler::Xox),
    ("xoxe", Handler::Xox),
    ("xapp-", Handler::Xox),
    ("hooks.slack.com/", Handler::SlackHook),
    ("k_live_", Handler::Back(&[("s", STRIPE), ("r", STRIPE)])),
    ("k_test_", Handler::Back(&[("s", STRIPE), ("r", STRIPE)])),
    (
        "whsec_",
        handler(Format::Stripe, Alphabet::Alnum, 32, 64, Check::Cls2),
    ),
    ("AIza", fixed(Format::GoogleApiKey, Alphabet::Url, 35)),
    ("GOCSPX-", fixed(Format::GoogleOauth, Alphabet::Url, 28)),
    (
        "ya29.",
        handler(Format::GoogleOauth, Alphabet::Url, 30, 2048, Check::Cls2),
    ),
    ("service_account", Handler::GcpSa),
    ("-----BEGIN", Handler::Pem),
    // JWT headers open with `{"alg"`, `{"typ"` or `{"kid"`.
    ("eyJh", Handler::Jwt),
    ("eyJ0", Handler::Jwt),
    ("eyJr", Handler::Jwt),
    ("sk.eyJ", Handler::Token(MAPBOX)),
    ("glc_", Handler::Token(GRAFANA_CLOUD)),
    (
        "npm_",
        handler(Format::Npm, Alphabet::Alnum, 36, 36, Check::Crc),
    ),
    (
        "pypi-",
        handler(Format::Pypi, Alphabet::Url, 50, 4096, Check::Pypi),
    ),
    ("dckr_", Handler::Sub(&[("pat_", DOCKER), ("oat_", DOCKER)])),
    ("dapi", fixed(Format::Databricks, Alphabet::HexL, 32)),
    ("shpat_", Handler::Token(SHOPIFY)),
    ("shpss_", Handler::Token(SHOPIFY)),
    (
        "sq0atp-",
        handler(Format::Square, Alphabet::Url, 22, 22, Check::No),
    ),
    ("EAAA", Handler::Eaa),
    (
        "HRKU-",
        handler(Format::Heroku, Alphabet::Url, 60, 60, Check::Starts("AA")),
    ),
    (
        "_v1_",
        Handler::Back(&[("dop", DO), ("doo", DO), ("dor", DO)]),
    ),
    ("ATATT3", fixed(Format::Atlassian, Alphabet::UrlEq, 186)),
    (
        "PMAK-",
        handler(
            Format::Postman,
            Alphabet::HexDash,
            59,
            59,
            Check::SepAt(b'-', 24),
        ),
    ),
    ("lin_api_", fixed(Format::Linear, Alphabet::Alnum, 40)),
    ("dp.pt.", Handler::Token(DOPPLER)),
    ("hvs.", Handler::Token(VAULT)),
    ("NRAK-", fixed(Format::NewRelic, Alphabet::UpDig, 27)),
    (
        "sntry",
        Handler::Sub(&[
            (
                "s_",
                token(Format::Sentry, Alphabet::B64Eq, 60, 1024, Check::EyJ),
            ),
            (
                "u_",
                token(Format::Sentry, Alphabet::HexL, 64, 64, Check::No),
            ),
        ]),
    ),
    ("/api/webhooks/", Handler::DiscordHook),
    (".atlasv1.", Handler::Terraform),
    (
        "LTAI",
        handler(Format::Alibaba, Alphabet::Alnum, 20, 20, Check::Cls2),
    ),
    ("sl.B", Handler::Back(&[("", DROPBOX)])),
    (
        "gsk_",
        handler(Format::Groq, Alphabet::Alnum, 52, 52, Check::Cls3),
    ),
    (
        "pplx-",
        handler(Format::Perplexity, Alphabet::Alnum, 48, 48, Check::Cls2),
    ),
    (
        "xai-",
        handler(Format::Xai, Alphabet::Alnum, 80, 80, Check::Cls3),
    ),
    ("AGE-SECRET-KEY-1", Handler::Token(AGE)),
    ("tskey-", Handler::Token(TAILSCALE)),
    (
        "lsv2_",
        handler(
            Format::Langsmith,
            Alphabet::LowDigU,
            46,
            46,
            Check::Langsmith,
        ),
    ),
    ("rubygems_", fixed(Format::Rubygems, Alphabet::HexL, 48)),
    (
        "pscale_",
        Handler::Sub(&[("tkn_", PSCALE), ("pw_", PSCALE), ("oauth_", PSCALE)]),
    ),
];

/// Formats without an anchor of their own, recognised when they are the value assigned to a
/// secret-like name (`PULUMI_ACCESS_TOKEN=pul-…`). Each would cost a Teddy pattern slot while
/// being rare in LLM traffic outside such assignments.
pub(super) const SECONDARY: &[(&str, Token)] = &[
    (
        "SG.",
        token(
            Format::Sendgrid,
            Alphabet::UrlDot,
            66,
            66,
            Check::SepAt(b'.', 22),
        ),
    ),
    ("hf_", HF),
    (
        "r8_",
        token(Format::Replicate, Alphabet::Alnum, 37, 37, Check::Cls2),
    ),
    ("shpca_", SHOPIFY),
    ("shppa_", SHOPIFY),
    (
        "sq0csp-",
        token(Format::Square, Alphabet::Url, 43, 43, Check::No),
    ),
    ("dp.st.", DOPPLER),
    ("glrt-", GITLAB),
    ("sl.u", DROPBOX),
    (
        "pul-",
        token(Format::Pulumi, Alphabet::HexL, 40, 40, Check::No),
    ),
    (
        "sbp_",
        token(Format::Supabase, Alphabet::HexL, 40, 40, Check::No),
    ),
    (
        "fo1_",
        token(Format::Flyio, Alphabet::Url, 43, 43, Check::Cls2),
    ),
    (
        "glsa_",
        token(
            Format::Grafana,
            Alphabet::AlnumU,
            41,
            41,
            Check::SepAt(b'_', 32),
        ),
    ),
    ("dp.sa.", DOPPLER),
    ("dp.ct.", DOPPLER),
    ("dp.scim.", DOPPLER),
    ("dp.audit.", DOPPLER),
    ("key-", MAILGUN),
    ("ABIA", AWS_ID),
    ("ACCA", AWS_ID),
    ("gldt-", GITLAB),
    ("glptt-", GITLAB),
    ("glft-", GITLAB),
    ("api_org_", HF),
    ("hvb.", VAULT),
    ("hvr.", VAULT),
    ("NRII-", NEWRELIC_INSERT),
    ("squ_", SONAR),
    ("sqp_", SONAR),
    ("sqa_", SONAR),
];
