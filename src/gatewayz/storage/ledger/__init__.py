"""The money repository: users' balances, holds and ledger rows (`billing.ledger` has the model
and the rules that are not SQL).

    money.py   a user's money columns, the row lock, ledger rows, the consistency check
    holds.py   the request path's reserve / settle / release, plain SQL run synchronously
    runner.py  runs holds.py on SQLite in one thread with group commit (async engine on PG)

Concurrency
    Each operation (reads included) is one transaction: its own, committed on return, when the
    connection is idle; the caller's, which the caller commits, when one is already open (note
    that SQLAlchemy opens one implicitly on any statement). On PostgreSQL a hold is a single
    conditional UPDATE (`held = held + m WHERE allowance + purchased - held >= m`), which
    row-locks the user and re-checks the condition against the latest committed row, so any
    number of workers can never reserve more than the balance. Every other operation first
    locks the user row with an UPDATE … RETURNING (on SQLite that takes the database write
    lock, which serialises writers); settle and release first flip the hold's status with a
    conditional UPDATE, their idempotency gate. Charges are idempotent by the unique
    `(request_id, type)` ledger key, inserted with ON CONFLICT DO NOTHING. Lock order is
    always hold row, then user row: no deadlocks.
"""
