"""connect()'s TLS arguments as the core's settings. The rule: never weaker than asked.
Every source (ssl_mode, an ssl dict or ssl.SSLContext, ssl=True, the option file) is
honoured, the strongest of what they ask for wins (the URL's ssl-mode counts too: the core
takes the stronger of it and these), and what cannot be carried over into the core's
OpenSSL is an error, never dropped."""
import ssl as _ssl

from . import err

_ORDER = ("disabled", "preferred", "required", "verify-ca", "verify-identity")
_ALIASES = {"disable": "disabled", "prefer": "preferred", "require": "required",
            "verify-full": "verify-identity"}
# An ssl dict's keys, as PyMySQL reads them (MySQLdb's are a subset).
_DICT_KEYS = {"ca", "capath", "cert", "key", "check_hostname", "verify_mode", "password", "cipher"}


def _mode(name):
    m = str(name).lower().replace("_", "-")
    m = _ALIASES.get(m, m)
    if m not in _ORDER:
        raise err.ProgrammingError(0, "unknown ssl_mode %r" % (name,))
    return m


def _stronger(a, b):
    if a is None:
        return b
    if b is None:
        return a
    return a if _ORDER.index(a) >= _ORDER.index(b) else b


def _not_carried(what):
    raise err.NotSupportedError(0, "TLS: %s cannot be carried over to ambisql's TLS (OpenSSL in the core); "
                                   "refused rather than ignored" % what)


def _verify_wanted(value):
    # An ssl dict's verify_mode, as PyMySQL takes it: a bool, a name or an ssl.VerifyMode.
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value != _ssl.CERT_NONE
    name = str(value).lower()
    if name in ("none", "cert_none"):
        return False
    if name in ("optional", "required", "cert_optional", "cert_required"):
        return True
    raise err.ProgrammingError(0, "unknown verify_mode %r in the ssl dict" % (value,))


def _from_dict(d, out):
    unknown = set(d) - _DICT_KEYS
    if unknown:
        raise err.ProgrammingError(0, "unknown key(s) in the ssl dict: %s" % ", ".join(sorted(map(str, unknown))))
    if d.get("password"):
        _not_carried("a password for an encrypted client key (ssl['password'])")
    if d.get("cipher"):
        _not_carried("a cipher list (ssl['cipher']); the core accepts TLS 1.2+ with OpenSSL's default ciphers")
    for key in ("ca", "capath", "cert", "key"):
        if d.get(key):
            out["ssl_" + key] = str(d[key])
    # PyMySQL's rule: with a CA file or directory, verify the certificate and the host name
    # (check_hostname=False: the certificate only); without one, encrypt only, unless
    # verify_mode asks for verification (then against the system's trust store).
    has_ca = bool(d.get("ca") or d.get("capath"))
    verify = _verify_wanted(d["verify_mode"]) if d.get("verify_mode") is not None else has_ca
    hostname = has_ca and d.get("check_hostname", True) is not False
    if hostname and not verify:
        raise err.ProgrammingError(0, "ssl dict: check_hostname needs verify_mode other than none")
    return "verify-identity" if hostname else "verify-ca" if verify else "required"


def _from_context(ctx, out):
    if ctx.verify_flags & (_ssl.VERIFY_CRL_CHECK_LEAF | _ssl.VERIFY_CRL_CHECK_CHAIN):
        _not_carried("CRL checking (the SSLContext's verify_flags)")
    if ctx.verify_mode != _ssl.CERT_NONE:
        # The CA certificates the context holds; none listed (ssl.create_default_context()
        # loads the system's store lazily): the system's trust store, as the core's default.
        pem = "".join(_ssl.DER_cert_to_PEM_cert(der) for der in ctx.get_ca_certs(binary_form=True))
        if pem:
            out["ssl_ca_pem"] = pem
    minimum = ctx.minimum_version
    if minimum == _ssl.TLSVersion.TLSv1_3 or (ctx.options & _ssl.OP_NO_TLSv1_2):
        out["tls_min_version"] = 0x0304  # (an older minimum is raised to TLS 1.2, never lowered)
    if ctx.maximum_version not in (_ssl.TLSVersion.MAXIMUM_SUPPORTED, _ssl.TLSVersion.TLSv1_3):
        if ctx.maximum_version < _ssl.TLSVersion.TLSv1_2:
            _not_carried("a maximum TLS version below 1.2")
    if ctx.check_hostname:
        return "verify-identity"
    return "verify-ca" if ctx.verify_mode != _ssl.CERT_NONE else "required"


def settings(ssl, ssl_mode, ssl_ca, ssl_cert, ssl_key, ssl_disabled, from_file):
    """The core's TLS options (ssl_mode, ssl_ca, ssl_capath, ssl_ca_pem, ssl_cert, ssl_key,
    tls_min_version) for connect()'s arguments; ssl_mode is left out when nothing asked
    for a mode (the URL's, or the default: preferred). A client certificate loaded into
    an SSLContext cannot be read back from it: pass ssl_cert / ssl_key beside it."""
    out = {}
    asked = _mode(ssl_mode) if ssl_mode is not None else None
    if from_file:
        # An option file's TLS lines: its CA, directory and client files as an ssl dict's,
        # ssl-mode and ssl-verify-server-cert as the mode they name.
        files = {k[4:]: v for k, v in from_file.items() if k in ("ssl-ca", "ssl-capath", "ssl-cert", "ssl-key")}
        if files:
            asked = _stronger(asked, _from_dict(files, out))
        if from_file.get("ssl-cipher"):
            _not_carried("the option file's ssl-cipher")
        if from_file.get("ssl-mode"):
            asked = _stronger(asked, _mode(from_file["ssl-mode"]))
        verify = from_file.get("ssl-verify-server-cert", "missing")
        if verify is None or str(verify).lower() in ("", "1", "true", "on", "yes"):  # (a bare option is on)
            asked = _stronger(asked, "verify-identity")
    if isinstance(ssl, _ssl.SSLContext):
        asked = _stronger(asked, _from_context(ssl, out))
    elif isinstance(ssl, dict):
        asked = _stronger(asked, _from_dict(ssl, out))
    elif ssl is True:
        asked = _stronger(asked, "required")
    elif ssl not in (None, False):
        raise err.ProgrammingError(0, "ssl must be a dict, an ssl.SSLContext, True or None, not %r" % type(ssl).__name__)
    for key, value in (("ssl_ca", ssl_ca), ("ssl_cert", ssl_cert), ("ssl_key", ssl_key)):
        if value:
            out[key] = str(value)
    if ssl_ca:  # a CA given is a CA to verify with
        asked = _stronger(asked, "verify-ca")
    if ssl_disabled:
        if asked is not None and _ORDER.index(asked) >= _ORDER.index("required"):
            raise err.ProgrammingError(0, "ssl_disabled=True conflicts with TLS asked for as %s" % asked)
        asked = "disabled"
    if asked is not None:
        out["ssl_mode"] = asked
    return out
