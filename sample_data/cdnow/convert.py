#!/usr/bin/env python3
"""Convert the CDNOW master transaction log (whitespace separated text) to typed Parquet.

Usage (from the repository root, with pyarrow installed, e.g. `pip install pyarrow`):

    python sample_data/cdnow/convert.py ../shared/data/cdnow/CDNOW_master.txt sample_data/cdnow/transactions.parquet

The output path defaults to `transactions.parquet` in the current directory.

Input: one header line, then `customer_id date(YYYYMMDD) number_of_cds dollar_value` per line.
Output columns: customer_id (utf8, zero padded as in the source, e.g. "00001"),
order_date (date32 / Parquet DATE), quantity (int32), amount (float64).
Rows are sorted by (order_date, customer_id) so row-group min/max statistics on
order_date allow date pruning; zstd compression, 10,000 rows per row group.
"""
import datetime
import sys

import pyarrow as pa
import pyarrow.parquet as pq

ROW_GROUP_SIZE = 10_000


def read_master(path):
    customer_ids, dates, quantities, amounts = [], [], [], []
    with open(path, "r", encoding="ascii") as f:
        header = f.readline().split()
        if header[:2] != ["customer_id", "date"]:
            raise ValueError(f"unexpected header: {header}")
        for lineno, line in enumerate(f, start=2):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 4:
                raise ValueError(f"line {lineno}: expected 4 fields, got {parts}")
            cid, ymd, qty, amt = parts
            customer_ids.append(cid)
            dates.append(datetime.date(int(ymd[:4]), int(ymd[4:6]), int(ymd[6:8])))
            quantities.append(int(qty))
            amounts.append(float(amt))
    return customer_ids, dates, quantities, amounts


def main(argv):
    if len(argv) not in (2, 3):
        sys.stderr.write(__doc__)
        return 2
    src = argv[1]
    dst = argv[2] if len(argv) == 3 else "transactions.parquet"
    customer_ids, dates, quantities, amounts = read_master(src)
    # stable sort by date, then customer id (the source order is by customer, then date)
    order = sorted(range(len(dates)), key=lambda i: (dates[i], customer_ids[i]))
    schema = pa.schema(
        [
            pa.field("customer_id", pa.string(), nullable=False),
            pa.field("order_date", pa.date32(), nullable=False),
            pa.field("quantity", pa.int32(), nullable=False),
            pa.field("amount", pa.float64(), nullable=False),
        ]
    )
    table = pa.table(
        {
            "customer_id": pa.array([customer_ids[i] for i in order], pa.string()),
            "order_date": pa.array([dates[i] for i in order], pa.date32()),
            "quantity": pa.array([quantities[i] for i in order], pa.int32()),
            "amount": pa.array([amounts[i] for i in order], pa.float64()),
        },
        schema=schema,
    )
    pq.write_table(
        table,
        dst,
        compression="zstd",
        row_group_size=ROW_GROUP_SIZE,
        write_statistics=True,
    )
    print(f"wrote {table.num_rows} rows to {dst}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
