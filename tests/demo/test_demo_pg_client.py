"""The demo app's PostgreSQL client and user store, in pure logic: SCRAM-SHA-256 against RFC 7677's example
exchange, the messages it reads, and the stored password hashes. (Against the real server: the full demo run,
whose flow registers a user and logs in as it.)"""
from __future__ import annotations

import base64
import struct
import sys

import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "demo" / "app"))
import pg_client  # noqa: E402
import user_store  # noqa: E402


def test_scram_client_final_matches_rfc_7677s_example_and_checks_the_servers_proof():
    first_bare = "n=user,r=rOprNGfwEbeRWgbNEkqO"
    server_first = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
    final, server_signature = pg_client.scram_client_final("pencil", first_bare, server_first)
    assert final == ("c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                     "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
    assert base64.b64encode(server_signature).decode() == "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="


def test_a_server_nonce_that_does_not_extend_the_clients_is_refused():
    with pytest.raises(pg_client.PgError, match="nonce"):
        pg_client.scram_client_final("pencil", "n=,r=abc", "r=xyz123,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")


def test_rows_and_errors_are_read_from_their_messages():
    row = struct.pack("!h", 2) + struct.pack("!i", 1) + b"t" + struct.pack("!i", -1)
    assert pg_client._data_row(row) == ("t", None)
    err = pg_client._error(b"SERROR\0C42P01\0Mrelation \"app_users\" does not exist\0\0")
    assert err.code == "42P01" and "app_users" in str(err)


def test_stored_password_hashes_are_salted_and_check_only_the_right_password():
    a, b = user_store.hash_password("correct horse"), user_store.hash_password("correct horse")
    assert a != b and "correct horse" not in a
    assert user_store.check_password("correct horse", a)
    assert not user_store.check_password("wrong horse", a)
    assert not user_store.check_password("correct horse", "not-a-hash")
