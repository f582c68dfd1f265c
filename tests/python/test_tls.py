"""TLS as connect() is asked for it: never weaker than asked, from any source (keywords, an
ssl dict, an ssl.SSLContext, the URL, an option file); what cannot be carried over is an
error, never dropped. The test server's certificate is signed by AMBISQL_TEST_CA and names
127.0.0.1; AMBISQL_TEST_OTHER_CA signed nothing it presents."""
import os
import ssl
import subprocess

import pytest

import ambisql

import conftest


def server_kwargs(**over):
    # The test server's settings, TLS as each test asks (conftest's disable it: an
    # explicit "disabled" beside a source that requires TLS is refused as a conflict).
    return conftest.server_kwargs(**dict({"ssl_mode": None}, **over))

CA = os.environ.get("AMBISQL_TEST_CA", "")
OTHER_CA = os.environ.get("AMBISQL_TEST_OTHER_CA", "")


def tls_version(c):
    cur = c.cursor()
    cur.execute("SHOW SESSION STATUS LIKE 'Ssl_version'")
    return cur.fetchone()[1]


def refused(**kw):
    with pytest.raises(ambisql.OperationalError) as e:
        ambisql.connect(**server_kwargs(**kw))
    assert e.value.args[0] == 2026, e.value  # a TLS failure, not a plaintext session
    return e.value


def test_an_sslcontext_is_honoured():
    # Review defect 4: ssl=ssl.SSLContext(...) was ignored and became "preferred" (no
    # verification, plaintext fallback). Its verify_mode, check_hostname, CA certificates
    # and minimum version now decide.
    ctx = ssl.create_default_context(cafile=CA)  # CERT_REQUIRED, check_hostname
    c = ambisql.connect(**server_kwargs(ssl=ctx))
    assert tls_version(c).startswith("TLS")
    c.close()
    refused(ssl=ssl.create_default_context(cafile=OTHER_CA))
    ctx = ssl.create_default_context(cafile=CA)
    ctx.check_hostname = False  # the certificate, not the name
    c = ambisql.connect(**server_kwargs(host="localhost", ssl=ctx))
    assert c._c.tls_active
    c.close()
    unverified = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    unverified.check_hostname = False
    unverified.verify_mode = ssl.CERT_NONE  # TLS without verification: still TLS, required
    c = ambisql.connect(**server_kwargs(ssl=unverified))
    assert c._c.tls_active
    c.close()
    ctx = ssl.create_default_context(cafile=CA)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    c = ambisql.connect(**server_kwargs(ssl=ctx))
    assert tls_version(c) == "TLSv1.3"
    c.close()
    # The system's trust store for a context that lists no CA (create_default_context()):
    # the test CA is not in it.
    refused(ssl=ssl.create_default_context())
    crl = ssl.create_default_context(cafile=CA)
    crl.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
    with pytest.raises(ambisql.NotSupportedError, match="CRL"):
        ambisql.connect(**server_kwargs(ssl=crl))


def test_an_ssl_dict_keeps_its_capath_and_refuses_what_it_cannot_carry(tmp_path):
    # Review defect 4: ssl={'capath': ...} dropped the directory and did not verify.
    good, other = tmp_path / "good", tmp_path / "other"
    for d, ca in ((good, CA), (other, OTHER_CA)):
        d.mkdir()
        (d / "ca.pem").write_bytes(open(ca, "rb").read())
        subprocess.run(["openssl", "rehash", str(d)], check=True, capture_output=True)
    c = ambisql.connect(**server_kwargs(ssl={"capath": str(good)}))
    assert c._c.tls_active
    c.close()
    refused(ssl={"capath": str(other)})
    refused(ssl={"ca": OTHER_CA, "check_hostname": False})
    refused(ssl={"verify_mode": True})  # verified against the system's store
    c = ambisql.connect(**server_kwargs(ssl={"ca": OTHER_CA, "verify_mode": "none", "check_hostname": False}))
    assert c._c.tls_active  # asked for: encrypted, unverified
    c.close()
    with pytest.raises(ambisql.NotSupportedError, match="cipher"):
        ambisql.connect(**server_kwargs(ssl={"ca": CA, "cipher": "ECDHE-RSA-AES128-GCM-SHA256"}))
    with pytest.raises(ambisql.NotSupportedError, match="password"):
        ambisql.connect(**server_kwargs(ssl={"ca": CA, "password": "secret"}))
    with pytest.raises(ambisql.ProgrammingError, match="unknown key"):
        ambisql.connect(**server_kwargs(ssl={"cafile": CA}))
    # A CA given as a keyword is a CA to verify with.
    refused(ssl_mode=None, ssl_ca=OTHER_CA)


def test_never_weaker_than_any_source_asked(tmp_path):
    # The option file's ssl-mode and ssl-verify-server-cert were ignored.
    port = os.environ["AMBISQL_TEST_PORT"]
    opt = tmp_path / "my.cnf"
    opt.write_text("[client]\nssl-mode = VERIFY_IDENTITY\nssl-ca = %s\n" % OTHER_CA)
    refused(read_default_file=str(opt))
    opt.write_text("[client]\nssl-verify-server-cert\n")
    refused(read_default_file=str(opt))  # (the system's store)
    opt.write_text("[client]\nssl-mode = REQUIRED\n")
    c = ambisql.connect(**server_kwargs(read_default_file=str(opt)))
    assert c._c.tls_active
    c.close()
    # The URL asks for verification; a weaker keyword does not undo it.
    url = "mysql://ambisql:%s@127.0.0.1:%s/ambisql_test?ssl-mode=verify-ca&ssl-ca=%s" % (
        os.environ.get("AMBISQL_TEST_PASSWORD", "ambisql-pw"), port, OTHER_CA)
    with pytest.raises(ambisql.OperationalError) as e:
        ambisql.connect(url=url, ssl_mode="required")
    assert e.value.args[0] == 2026
    with pytest.raises(ambisql.ProgrammingError, match="conflicts"):
        ambisql.connect(url=url, ssl_mode="disabled")
    with pytest.raises(ambisql.ProgrammingError, match="conflicts"):
        ambisql.connect(**server_kwargs(ssl={"ca": CA}, ssl_disabled=True))
    c = ambisql.connect(**server_kwargs(ssl_disabled=True))
    assert not c._c.tls_active
    c.close()
