"""The reader logins made sure of lately (reconcile/stores.py ReaderLogins): one look serves
every product granting the reader until the recheck time, per store, and a forgotten login is
looked at again at once."""

from __future__ import annotations

from dataproduct_operator.reconcile.stores import LOGIN_RECHECK_SECONDS, ReaderLogins


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_confirmed_login_is_fresh_until_the_recheck_time() -> None:
    clock = Clock()
    logins = ReaderLogins(clock=clock)
    assert not logins.fresh("pg", "dm_sa_finance__reporting")
    logins.confirm("pg", "dm_sa_finance__reporting")
    clock.now += LOGIN_RECHECK_SECONDS - 1
    assert logins.fresh("pg", "dm_sa_finance__reporting")
    assert not logins.fresh("other", "dm_sa_finance__reporting")  # per store
    clock.now += 1
    assert not logins.fresh("pg", "dm_sa_finance__reporting")


def test_forgetting_a_login_or_a_store_makes_the_next_pass_look_again() -> None:
    logins = ReaderLogins(clock=Clock())
    for store, role in (("pg", "a"), ("pg", "b"), ("other", "a")):
        logins.confirm(store, role)
    logins.forget("pg", "a")
    assert [logins.fresh("pg", "a"), logins.fresh("pg", "b")] == [False, True]
    logins.forget_store("pg")
    assert [logins.fresh("pg", "b"), logins.fresh("other", "a")] == [False, True]


def test_one_lock_per_store_and_login() -> None:
    logins = ReaderLogins()
    assert logins.lock("pg", "a") is logins.lock("pg", "a")
    assert logins.lock("pg", "a") is not logins.lock("pg", "b")
    assert logins.lock("pg", "a") is not logins.lock("other", "a")
