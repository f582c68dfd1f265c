"""connect()'s TLS arguments as the core's settings: each source's (name, value, source)
triples, for the core's one options builder (config_builder, through options.cpp), which
applies the rule: never weaker than asked (the strongest ssl-mode any source asks for wins,
the URL's and the option file's included; "disabled" against a source that requires TLS is
an error). Here only what is Python's own is read: an ssl dict (PyMySQL's keys) and an
ssl.SSLContext. What cannot be carried over into the core's OpenSSL is an error, never
dropped."""
import ssl as _ssl

from . import err

# An ssl dict's keys, as PyMySQL reads them (MySQLdb's are a subset).
_DICT_KEYS = {"ca", "capath", "cert", "key", "check_hostname", "verify_mode", "password", "cipher"}


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
            out.append(("ssl-" + key, str(d[key]), "the ssl dict's " + key))
    # PyMySQL's rule: with a CA file or directory, verify the certificate and the host name
    # (check_hostname=False: the certificate only); without one, encrypt only, unless
    # verify_mode asks for verification (then against the system's trust store).
    has_ca = bool(d.get("ca") or d.get("capath"))
    verify = _verify_wanted(d["verify_mode"]) if d.get("verify_mode") is not None else has_ca
    hostname = has_ca and d.get("check_hostname", True) is not False
    if hostname and not verify:
        raise err.ProgrammingError(0, "ssl dict: check_hostname needs verify_mode other than none")
    mode = "verify-identity" if hostname else "verify-ca" if verify else "required"
    out.append(("ssl-mode", mode, "the ssl dict"))


def _from_context(ctx, out):
    if ctx.verify_flags & (_ssl.VERIFY_CRL_CHECK_LEAF | _ssl.VERIFY_CRL_CHECK_CHAIN):
        _not_carried("CRL checking (the SSLContext's verify_flags)")
    if ctx.verify_mode != _ssl.CERT_NONE:
        # The CA certificates the context holds; none listed (ssl.create_default_context()
        # loads the system's store lazily): the system's trust store, as the core's default.
        pem = "".join(_ssl.DER_cert_to_PEM_cert(der) for der in ctx.get_ca_certs(binary_form=True))
        if pem:
            out.append(("ssl-ca-pem", pem, "the SSLContext's CA certificates"))
    minimum = ctx.minimum_version
    if minimum == _ssl.TLSVersion.TLSv1_3 or (ctx.options & _ssl.OP_NO_TLSv1_2):
        out.append(("tls-min-version", "1.3", "the SSLContext's minimum_version"))  # (older: TLS 1.2, never lower)
    if ctx.maximum_version not in (_ssl.TLSVersion.MAXIMUM_SUPPORTED, _ssl.TLSVersion.TLSv1_3):
        if ctx.maximum_version < _ssl.TLSVersion.TLSv1_2:
            _not_carried("a maximum TLS version below 1.2")
    mode = "verify-identity" if ctx.check_hostname else "verify-ca" if ctx.verify_mode != _ssl.CERT_NONE else "required"
    out.append(("ssl-mode", mode, "the SSLContext"))


def settings(ssl, ssl_mode, ssl_ca, ssl_cert, ssl_key, ssl_disabled):
    """The (name, value, source) settings connect()'s TLS arguments make. A client
    certificate loaded into an SSLContext cannot be read back from it: pass ssl_cert /
    ssl_key beside it."""
    out = []
    if ssl_mode is not None:
        out.append(("ssl-mode", str(ssl_mode), "keyword argument ssl_mode"))
    if isinstance(ssl, _ssl.SSLContext):
        _from_context(ssl, out)
    elif isinstance(ssl, dict):
        _from_dict(ssl, out)
    elif ssl is True:
        out.append(("ssl-mode", "required", "ssl=True"))
    elif ssl not in (None, False):
        raise err.ProgrammingError(0, "ssl must be a dict, an ssl.SSLContext, True or None, not %r" % type(ssl).__name__)
    for key, value in (("ca", ssl_ca), ("cert", ssl_cert), ("key", ssl_key)):
        if value:
            out.append(("ssl-" + key, str(value), "keyword argument ssl_" + key))
    if ssl_ca:  # a CA given is a CA to verify with
        out.append(("ssl-mode", "verify-ca", "keyword argument ssl_ca"))
    if ssl_disabled:
        out.append(("ssl-mode", "disabled", "keyword argument ssl_disabled"))
    return out
