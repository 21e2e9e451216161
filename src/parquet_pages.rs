//! Parquet encoding on all cores: output tables, scratch buckets and spilled summaries.
//!
//! polars' writer encodes a row group's columns in parallel but compresses the pages on the
//! writing thread, one after another, which made zstd a one-core step of every run, and it
//! looks for a dictionary in every string column. Here the columns of every row group are
//! encoded and compressed as rayon tasks (polars' own encoders and options), then polars'
//! writer writes the finished pages in order, so a file is the same on every run. The file
//! comes back as [`Pieces`]: the pages' own buffers with the writer's headers and footer
//! between them, not copied into one buffer of the whole file.

use polars::prelude::*;
use polars_arrow::array::{Array, DictionaryArray, PrimitiveArray, Utf8ViewArray};
use polars_arrow::datatypes::IntegerType;
use polars_parquet::parquet::CowBuffer;

use crate::scratch_io::Pieces;

/// Rows per Parquet row group (polars' default).
const ROW_GROUP_ROWS: usize = 512 * 512;

/// How a file is encoded.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Encoding {
    codec: Codec,
    /// Compress float columns too (LZ4 gains nothing on amounts with cents: it made them
    /// larger).
    compress_floats: bool,
    statistics: bool,
    dictionaries: Dictionaries,
}

/// How pages are compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Codec {
    /// zstd at level 1. Measured on the 50 M-row workload's `customer_features` (1.9 M rows,
    /// 53 columns): encoded in 0.75 s into 238 MB, against 0.98–1.03 s and 218 MB at level 3
    /// (zstd's default).
    Zstd1,
    /// LZ4 (the raw block format).
    Lz4Raw,
    /// No compression.
    Uncompressed,
}

impl Codec {
    fn parquet(self) -> ParquetCompression {
        match self {
            Codec::Zstd1 => {
                ParquetCompression::Zstd(polars_parquet::write::ZstdLevel::try_new(1).ok())
            }
            Codec::Lz4Raw => ParquetCompression::Lz4Raw,
            Codec::Uncompressed => ParquetCompression::Uncompressed,
        }
    }
}

/// Which columns get a dictionary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dictionaries {
    /// Wherever polars' writer finds one pays (it estimates every string and float column's
    /// cardinality); string dictionaries are built here, with polars' codes.
    Polars,
    /// Integer columns whose range polars' writer codes by offset ([`CHEAP_RANGE`]); string
    /// columns when a sample of their first [`SAMPLE_ROWS`] values has few distinct ones,
    /// with the dictionary built here ([`string_dictionary`]).
    Cheap,
}

/// Whether [`encode`] builds a string column's dictionary itself ([`string_dictionary`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Coding {
    /// Not a string column given a dictionary: polars' writer decides.
    Writer,
    /// Always (the sample of [`Dictionaries::Cheap`] had few distinct values).
    Always,
    /// Where polars' writer would build one (under 3/4 distinct values in the row group),
    /// with the same codes, so the file is the same; but a column whose first
    /// [`SAMPLE_ROWS`] values are over 3/4 distinct is written plain, and one whose first
    /// values are at most 1/8 distinct gets its dictionary, without polars' estimate of the
    /// whole column.
    AsPolars,
}

/// Integer columns with a range (max − min) below this get a dictionary
/// ([`Dictionaries::Cheap`]): polars' writer codes them by offset from the minimum.
const CHEAP_RANGE: i128 = 1 << 16;

/// Values sampled to decide a string column's dictionary ([`Dictionaries::Cheap`]).
const SAMPLE_ROWS: usize = 4096;

impl Encoding {
    /// Output tables: zstd (level 1), statistics (BI engines skip row groups by them), dictionaries.
    pub(crate) const OUTPUT: Encoding = Encoding {
        codec: Codec::Zstd1,
        compress_floats: true,
        statistics: true,
        dictionaries: Dictionaries::Polars,
    };
    /// Scratch files, read back whole by this run only: uncompressed, no statistics,
    /// dictionaries only where they are cheap to find. At 50 M rows, polars' search for
    /// dictionaries in the id columns was the split's costliest step; with no dictionary at all
    /// the split was faster but reading the buckets back slower. Uncompressed, the 50 M scratch
    /// holds 1.87 GB instead of LZ4's 0.95 GB, and the run took 23.9 s instead of 25.2–26.6 s
    /// (the split 5.8–6.6 s instead of 7.2–8.4 s; LZ4 compression had been the largest single
    /// function of a `perf` profile of the whole run, 7 % of its samples).
    pub(crate) const SCRATCH: Encoding = Encoding {
        codec: Codec::Uncompressed,
        compress_floats: false,
        statistics: false,
        dictionaries: Dictionaries::Cheap,
    };

    /// A backfill's per-bucket summaries, parked on scratch until their date is published:
    /// as [`Encoding::SCRATCH`], but LZ4 with the float columns compressed too (counts and
    /// day spans held as floats shrink under LZ4, unlike amounts; they are written once per
    /// bucket and date, a small part of the work).
    pub(crate) const SPILL: Encoding = Encoding {
        codec: Codec::Lz4Raw,
        compress_floats: true,
        ..Encoding::SCRATCH
    };

    fn statistics(&self) -> StatisticsOptions {
        match self.statistics {
            true => StatisticsOptions::default(),
            false => StatisticsOptions::empty(),
        }
    }
}

/// `df` as an output table's Parquet file ([`Encoding::OUTPUT`]).
pub(crate) fn to_parquet(df: &mut DataFrame) -> PolarsResult<Pieces> {
    encode(df, Encoding::OUTPUT)
}

/// `df` as a Parquet file, one row group per [`ROW_GROUP_ROWS`] rows.
pub(crate) fn encode(df: &mut DataFrame, encoding: Encoding) -> PolarsResult<Pieces> {
    use polars::io::parquet::write::get_encodings;
    use polars_parquet::parquet::error::ParquetError;
    use polars_parquet::write::{
        array_to_columns, CompressedPage, Compressor, Version, WriteOptions,
    };
    use rayon::prelude::*;

    let statistics = encoding.statistics();
    let options = WriteOptions {
        statistics,
        compression: encoding.codec.parquet().into(),
        version: Version::V1,
        data_page_size: None,
    };
    let arrow_schema = df.schema().to_arrow(CompatLevel::newest());
    let mut encodings: Vec<Vec<_>> = get_encodings(&arrow_schema).iter().cloned().collect();
    // String columns whose dictionary is built here ([`string_dictionary`]).
    let mut coded = vec![Coding::Writer; df.width()];
    for ((leaves, column), coded) in encodings.iter_mut().zip(df.columns()).zip(&mut coded) {
        let dictionary = match (column.dtype(), encoding.dictionaries) {
            // polars estimates a float column's cardinality, then writes it plain whatever it
            // found (it cannot cast floats to a dictionary): plain straight away, same file.
            (DataType::Float32 | DataType::Float64, _) => false,
            (DataType::String, Dictionaries::Cheap) => {
                let sample = column.slice(0, SAMPLE_ROWS);
                let few = sample.n_unique()? * 8 <= sample.len();
                if few {
                    *coded = Coding::Always;
                }
                few
            }
            (DataType::String, Dictionaries::Polars) => {
                *coded = Coding::AsPolars;
                true
            }
            // Integers (and dates, times) whose range polars' writer maps straight to codes;
            // beyond it polars estimates the cardinality and, below 3/4 distinct, builds the
            // dictionary with its value map (the timestamps of multi-line orders: 8 % of the
            // split at 50 M rows, for a dictionary half the column's size).
            // The first values first: a column they already spread too far (timestamps,
            // hashes, the ids' halves) is not scanned whole for its range.
            (dt, Dictionaries::Cheap) if dt.to_physical().is_integer() => {
                let narrow = |values: &Column| -> PolarsResult<bool> {
                    let values = values.as_materialized_series().to_physical_repr();
                    Ok(match (values.min::<i64>()?, values.max::<i64>()?) {
                        (Some(lo), Some(hi)) => (hi as i128 - lo as i128) < CHEAP_RANGE,
                        _ => false,
                    })
                };
                narrow(&column.slice(0, SAMPLE_ROWS))? && narrow(column)?
            }
            _ => true,
        };
        if !dictionary {
            for leaf in leaves.iter_mut() {
                if *leaf == polars_parquet::write::Encoding::RleDictionary {
                    *leaf = polars_parquet::write::Encoding::Plain;
                }
            }
        }
    }
    let fields = ParquetWriter::new(Vec::new())
        .batched(df.schema())?
        .parquet_schema()
        .fields()
        .to_vec();
    let mut groups = Vec::new();
    for i in 0..df.height().div_ceil(ROW_GROUP_ROWS) {
        let mut g = df.slice((i * ROW_GROUP_ROWS) as i64, ROW_GROUP_ROWS);
        g.rechunk_mut();
        let batch = g
            .iter_chunks(CompatLevel::newest(), false)
            .next()
            .expect("a rechunked, non-empty slice is one batch");
        for (c, array) in batch.columns().iter().enumerate() {
            groups.push((c, array.clone()));
        }
    }
    // One task per (row group, column): the pages of each of its Parquet leaf columns,
    // encoded and compressed.
    let pages: Vec<PolarsResult<Vec<Vec<_>>>> = groups
        .par_iter()
        .map(|(c, array)| {
            let float = matches!(
                array.dtype(),
                ArrowDataType::Float32 | ArrowDataType::Float64
            );
            let skip = float && (!encoding.compress_floats || !compresses(array.as_ref(), options));
            let options = match skip {
                true => WriteOptions {
                    compression: polars_parquet::write::CompressionOptions::Uncompressed,
                    ..options
                },
                false => options,
            };
            let strings = array.as_any().downcast_ref::<Utf8ViewArray>();
            let (array, leaf_encodings) = match (coded[*c], strings) {
                (Coding::Always, Some(strings)) => (string_dictionary(strings).boxed(), None),
                // polars' own rule: plain when more than 3/4 of the values are distinct; a
                // column whose first values already are (ids) skips polars' estimate of the
                // whole column.
                (Coding::AsPolars, Some(strings))
                    if strings.len() > 128
                        && match distinct_share(strings) {
                            share if share > 0.75 => true,
                            // A few values in the sample (segment names, attributes): coded.
                            share if share <= 0.125 => false,
                            _ => {
                                polars_compute::cardinality::estimate_cardinality(strings) as f64
                                    > 0.75 * strings.len() as f64
                            }
                        } =>
                {
                    (
                        array.clone(),
                        Some([polars_parquet::write::Encoding::Plain]),
                    )
                }
                (Coding::AsPolars, Some(strings)) => (string_dictionary(strings).boxed(), None),
                _ => (array.clone(), None),
            };
            let leaf_encodings = match &leaf_encodings {
                Some(plain) => &plain[..],
                None => &encodings[*c][..],
            };
            let leaves = array_to_columns(array, fields[*c].clone(), options, leaf_encodings)?;
            leaves
                .into_iter()
                .map(|leaf| {
                    let leaf = leaf.map(|page| {
                        page.map_err(|e| {
                            ParquetError::FeatureNotSupported(format!("reraised in polars: {e}"))
                        })
                    });
                    Compressor::new(leaf, options.compression, Vec::new())
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(PolarsError::from)
                })
                .collect()
        })
        .collect();
    let mut pages = pages.into_iter().collect::<PolarsResult<Vec<_>>>()?;
    // polars' writer lays out the file (headers, metadata, footer) into a `Stitch`, which keeps
    // the data pages' buffers as they are rather than copying them.
    let mut stitch = Stitch::default();
    for page in pages.iter_mut().flatten().flatten() {
        if let CompressedPage::Data(p) = page {
            let buffer: &[u8] = p.slice_mut();
            stitch
                .pages
                .insert((buffer.as_ptr() as usize, buffer.len()));
        }
    }
    let mut taken = std::collections::HashMap::with_capacity(stitch.pages.len());
    let mut writer = ParquetWriter::new(&mut stitch)
        .with_compression(encoding.codec.parquet())
        .with_statistics(statistics)
        .batched(df.schema())?;
    let mut pages = pages.into_iter();
    for i in 0..df.height().div_ceil(ROW_GROUP_ROWS) {
        let rows = (df.height() - i * ROW_GROUP_ROWS).min(ROW_GROUP_ROWS);
        let mut leaves = Vec::new();
        for _ in 0..df.width() {
            leaves.extend(pages.next().expect("one entry per column"));
        }
        writer.write_row_group(rows as u64, &leaves)?;
        // The pages' buffers move into the file's pieces (their addresses stay).
        for page in leaves.iter_mut().flatten() {
            if let CompressedPage::Data(p) = page {
                let buffer = std::mem::replace(p.slice_mut(), CowBuffer::Owned(Vec::new()));
                // The address the writer saw (a borrowed buffer is copied by `into_vec`).
                let address = buffer.as_ptr() as usize;
                taken.insert(address, bytes::Bytes::from(buffer.into_vec()));
            }
        }
    }
    writer.finish()?;
    drop(writer);
    let glue = bytes::Bytes::from(std::mem::take(&mut stitch.glue));
    let mut file = Pieces::default();
    for piece in stitch.pieces {
        file.push(match piece {
            Piece::Glue(range) => glue.slice(range),
            Piece::Page(address) => taken
                .remove(&address)
                .expect("every page written is one of the encoded pages"),
        });
    }
    Ok(file)
}

/// A `Write` that keeps a file's layout: the writes of known data page buffers as references to
/// them, everything else (headers, metadata, dictionary pages) copied into one glue buffer.
#[derive(Default)]
struct Stitch {
    /// (address, length) of the data pages' buffers.
    pages: std::collections::HashSet<(usize, usize)>,
    glue: Vec<u8>,
    pieces: Vec<Piece>,
}

/// A piece of a [`Stitch`]ed file.
enum Piece {
    /// Bytes of the glue buffer.
    Glue(std::ops::Range<usize>),
    /// The data page whose buffer starts at this address.
    Page(usize),
}

impl std::io::Write for Stitch {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let address = buf.as_ptr() as usize;
        if !buf.is_empty() && self.pages.remove(&(address, buf.len())) {
            self.pieces.push(Piece::Page(address));
            return Ok(buf.len());
        }
        let start = self.glue.len();
        self.glue.extend_from_slice(buf);
        match self.pieces.last_mut() {
            Some(Piece::Glue(range)) if range.end == start => range.end = self.glue.len(),
            _ => self.pieces.push(Piece::Glue(start..self.glue.len())),
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Float values whose bytes are sampled to decide whether a float column chunk is compressed.
const FLOAT_SAMPLE: usize = 8192;

/// Whether the first [`FLOAT_SAMPLE`] values of the float column chunk `array` shrink by more
/// than a fifth under `options`' codec. Summed and mean amounts (random-looking doubles) shrink
/// by about 6 % under zstd, and compressing them was time for nothing: such chunks are stored
/// uncompressed, as Parquet allows per column chunk (on the 10 M-row workload,
/// `customer_features` grows by 0.8 % and its encoding took 1.64–1.89 s instead of
/// 1.99–2.09 s). Columns of few or repeated values (probabilities, scores, days) stay
/// compressed.
fn compresses(array: &dyn Array, options: polars_parquet::write::WriteOptions) -> bool {
    let sample: Vec<u8> = match array.dtype() {
        ArrowDataType::Float64 => match array.as_any().downcast_ref::<PrimitiveArray<f64>>() {
            Some(a) => a.values()[..a.len().min(FLOAT_SAMPLE)]
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect(),
            None => return true,
        },
        _ => return true,
    };
    if sample.is_empty() {
        return true;
    }
    let mut out = Vec::with_capacity(sample.len());
    match polars_parquet::parquet::compression::compress(options.compression, &sample, &mut out) {
        Ok(()) => out.len() * 5 < sample.len() * 4,
        Err(_) => true,
    }
}

/// The share of distinct values among the first [`SAMPLE_ROWS`] of `strings`, counted
/// exactly.
fn distinct_share(strings: &Utf8ViewArray) -> f64 {
    let sample = strings.clone().sliced(0, strings.len().min(SAMPLE_ROWS));
    let mut seen = polars::prelude::PlHashSet::with_capacity(sample.len());
    for s in sample.iter() {
        seen.insert(s);
    }
    seen.len() as f64 / sample.len().max(1) as f64
}

/// `strings` as a dictionary array: codes in order of first appearance
/// ([`crate::codes::StringCodes`]). polars' writer builds the same dictionary with a generic
/// value map: for the category and channel columns, and the timestamps' dictionary that
/// [`Dictionaries::Cheap`] now leaves out, a fifth of the split's time at 50 M rows. Nulls are
/// not in the dictionary (as in polars').
fn string_dictionary(strings: &Utf8ViewArray) -> DictionaryArray<u32> {
    let mut codes = crate::codes::StringCodes::default();
    let valid = |i: usize| strings.validity().is_none_or(|v| v.get_bit(i));
    // Nulls: masked by the validity; 0 indexes a value whenever one exists.
    let keys: Vec<u32> = (0..strings.len())
        .map(|i| if valid(i) { codes.code(strings, i) } else { 0 })
        .collect();
    let keys = PrimitiveArray::new(
        ArrowDataType::UInt32,
        keys.into(),
        strings.validity().cloned(),
    );
    let values = Utf8ViewArray::from_slice_values(codes.values()).boxed();
    DictionaryArray::try_new(
        ArrowDataType::Dictionary(
            IntegerType::UInt32,
            Box::new(ArrowDataType::Utf8View),
            false,
        ),
        keys,
        values,
    )
    .expect("every code indexes the values")
}

#[cfg(test)]
mod tests {
    use super::*;
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::record::Field;

    /// Random-looking doubles are not worth compressing; repeated ones are; and an output
    /// file stores the first uncompressed and the second with zstd.
    #[test]
    fn incompressible_float_chunks_are_stored_uncompressed() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        let noise: Vec<f64> = (0..20_000).map(|_| rng.random::<f64>() * 1e4).collect();
        let steps: Vec<f64> = (0..20_000).map(|i| (i % 7) as f64 * 0.5).collect();
        let opts = polars_parquet::write::WriteOptions {
            statistics: StatisticsOptions::empty(),
            compression: Codec::Zstd1.parquet().into(),
            version: polars_parquet::write::Version::V1,
            data_page_size: None,
        };
        assert!(!compresses(&PrimitiveArray::from_vec(noise.clone()), opts));
        assert!(compresses(&PrimitiveArray::from_vec(steps.clone()), opts));
        let mut df = df!("noise" => noise, "steps" => steps).unwrap();
        let bytes = to_parquet(&mut df).unwrap().to_vec();
        let reader = SerializedFileReader::new(bytes::Bytes::from(bytes)).unwrap();
        let rg = reader.metadata().row_group(0);
        assert_eq!(
            rg.column(0).compression(),
            parquet::basic::Compression::UNCOMPRESSED
        );
        assert!(matches!(
            rg.column(1).compression(),
            parquet::basic::Compression::ZSTD(_)
        ));
    }

    #[test]
    fn parallel_encoding_round_trips_through_an_independent_reader() {
        // Three row groups (the last one short), nulls, strings, dates, booleans and a struct
        // column (two Parquet leaves), from several chunks.
        let n = 2 * ROW_GROUP_ROWS + 1234;
        let part = |lo: usize, hi: usize| {
            let ids: Vec<String> = (lo..hi).map(|i| format!("C{i:07}")).collect();
            let amount: Vec<Option<f64>> = (lo..hi)
                .map(|i| (i % 7 != 0).then_some(i as f64 * 0.25))
                .collect();
            let day: Vec<i32> = (lo..hi).map(|i| (i % 5000) as i32).collect();
            let flag: Vec<bool> = (lo..hi).map(|i| i % 3 == 0).collect();
            let mut df = df!(
                "customer_id" => ids,
                "amount" => amount,
                "day" => day,
                "flag" => flag,
            )
            .unwrap();
            df.with_column(df.column("day").unwrap().cast(&DataType::Date).unwrap())
                .unwrap();
            df.lazy()
                .with_column(as_struct(vec![col("amount"), col("flag")]).alias("pair"))
                .collect()
                .unwrap()
        };
        let mut df = part(0, 1000);
        df.vstack_mut(&part(1000, n)).unwrap();
        let pieces = to_parquet(&mut df).unwrap();
        // The data pages are pieces of their own, between the writer's glue (headers): at least
        // one per leaf column and row group (6 leaves, 3 row groups), not one copied buffer.
        assert!(
            pieces.iter().count() > 2 * 6 * 3,
            "{}",
            pieces.iter().count()
        );
        let bytes = pieces.to_vec();
        assert_eq!(bytes.len(), pieces.len());

        let reader = SerializedFileReader::new(bytes::Bytes::from(bytes.clone())).unwrap();
        let meta = reader.metadata();
        assert_eq!(meta.num_row_groups(), 3);
        assert_eq!(meta.file_metadata().num_rows(), n as i64);
        let rg = meta.row_group(2);
        assert_eq!(rg.num_rows(), 1234);
        let amount = rg.column(1);
        assert_eq!(
            amount.compression(),
            parquet::basic::Compression::ZSTD(Default::default())
        );
        let stats = amount.statistics().expect("statistics on");
        // i % 7 == 0 for i in 524288 .. 525522: 524288 = 7·74898 + 2, so 524293 + 7k, k = 0..=175.
        assert_eq!(stats.null_count_opt(), Some(176));
        let mut checked = 0;
        for (i, row) in reader.get_row_iter(None).unwrap().enumerate() {
            let row = row.unwrap();
            if i % 9973 != 0 && i + 1 != n {
                continue;
            }
            let cols: Vec<&Field> = row.get_column_iter().map(|(_, f)| f).collect();
            assert_eq!(cols[0], &Field::Str(format!("C{i:07}")));
            match cols[1] {
                Field::Double(v) => assert_eq!(*v, i as f64 * 0.25),
                Field::Null => assert_eq!(i % 7, 0),
                other => panic!("amount {other:?}"),
            }
            assert_eq!(cols[2], &Field::Date((i % 5000) as i32));
            assert_eq!(cols[3], &Field::Bool(i % 3 == 0));
            let Field::Group(pair) = cols[4] else {
                panic!("pair {:?}", cols[4]);
            };
            assert_eq!(
                pair.get_column_iter().nth(1).unwrap().1,
                &Field::Bool(i % 3 == 0)
            );
            checked += 1;
        }
        assert!(checked > 50);
        // polars reads it back equal, and an empty frame gives a valid file with its schema.
        let back = ParquetReader::new(std::io::Cursor::new(bytes))
            .finish()
            .unwrap();
        assert!(back.equals_missing(&df));
        // Scratch files: uncompressed, no statistics, read back equal; spills: LZ4.
        let spill = encode(&mut df, Encoding::SPILL).unwrap().to_vec();
        let reader = SerializedFileReader::new(bytes::Bytes::from(spill)).unwrap();
        let ids = reader.metadata().row_group(0).column(0);
        assert_eq!(ids.compression(), parquet::basic::Compression::LZ4_RAW);
        let bytes = encode(&mut df, Encoding::SCRATCH).unwrap().to_vec();
        let reader = SerializedFileReader::new(bytes::Bytes::from(bytes.clone())).unwrap();
        let ids = reader.metadata().row_group(0).column(0);
        assert_eq!(ids.compression(), parquet::basic::Compression::UNCOMPRESSED);
        let amount = reader.metadata().row_group(0).column(1);
        assert_eq!(
            amount.compression(),
            parquet::basic::Compression::UNCOMPRESSED
        );
        assert!(amount.statistics().is_none());
        // Dictionaries for a low-cardinality string column, not for an id column, in both (for
        // a float column polars estimates the cardinality, then writes it plain anyway).
        let mut few = df!(
            "id" => (0..5000).map(|i| format!("C{i:07}")).collect::<Vec<_>>(),
            "category" => (0..5000).map(|i| format!("cat{}", i % 20)).collect::<Vec<_>>(),
            "price" => (0..5000).map(|i| (i % 10) as f64).collect::<Vec<_>>(),
        )
        .unwrap();
        let dictionaries = |bytes: Vec<u8>| -> Vec<bool> {
            let reader = SerializedFileReader::new(bytes::Bytes::from(bytes)).unwrap();
            let rg = reader.metadata().row_group(0).clone();
            (0..3)
                .map(|c| {
                    rg.column(c)
                        .encodings()
                        .any(|e| e == parquet::basic::Encoding::RLE_DICTIONARY)
                })
                .collect()
        };
        let scratch = encode(&mut few, Encoding::SCRATCH).unwrap().to_vec();
        assert_eq!(dictionaries(scratch.clone()), [false, true, false]);
        let output = to_parquet(&mut few).unwrap().to_vec();
        assert_eq!(dictionaries(output.clone()), [false, true, false]);
        let reader = SerializedFileReader::new(bytes::Bytes::from(output)).unwrap();
        for (i, row) in reader.get_row_iter(None).unwrap().enumerate() {
            let row = row.unwrap();
            let category = row.get_column_iter().nth(1).unwrap().1;
            assert_eq!(category, &Field::Str(format!("cat{}", i % 20)));
        }
        let back = ParquetReader::new(std::io::Cursor::new(scratch))
            .finish()
            .unwrap();
        assert!(back.equals(&few));
        let back = ParquetReader::new(std::io::Cursor::new(bytes))
            .finish()
            .unwrap();
        assert!(back.equals_missing(&df));
        let mut empty = df.clear();
        let bytes = to_parquet(&mut empty).unwrap().to_vec();
        let back = ParquetReader::new(std::io::Cursor::new(bytes))
            .finish()
            .unwrap();
        assert_eq!(back.height(), 0);
        assert_eq!(back.schema(), df.schema());
    }

    #[test]
    fn scratch_dictionaries_read_back_by_an_independent_reader() {
        // Short strings (inline in their views) and long ones, and nulls: a dictionary built
        // here. A timestamp-like column with repeats over a wide range: plain. Days: polars'
        // range dictionary.
        let n = 10_000;
        let category: Vec<Option<String>> = (0..n)
            .map(|i| match i % 11 {
                0 => None,
                k if k % 2 == 0 => Some(format!("c{k}")),
                k => Some(format!("a category name longer than twelve bytes {k}")),
            })
            .collect();
        let ts: Vec<i64> = (0..n).map(|i| (i / 2) as i64 * 1_000_003).collect();
        let day: Vec<i32> = (0..n).map(|i| 19_000 + (i % 40)).collect();
        let mut df = df!("category" => &category, "ts" => &ts, "day" => &day).unwrap();
        let bytes = encode(&mut df, Encoding::SCRATCH).unwrap().to_vec();
        let reader = SerializedFileReader::new(bytes::Bytes::from(bytes.clone())).unwrap();
        let rg = reader.metadata().row_group(0).clone();
        let dictionary: Vec<bool> = (0..3)
            .map(|c| {
                rg.column(c)
                    .encodings()
                    .any(|e| e == parquet::basic::Encoding::RLE_DICTIONARY)
            })
            .collect();
        assert_eq!(dictionary, [true, false, true]);
        for (i, row) in reader.get_row_iter(None).unwrap().enumerate() {
            let row = row.unwrap();
            let cols: Vec<&Field> = row.get_column_iter().map(|(_, f)| f).collect();
            match &category[i] {
                Some(c) => assert_eq!(cols[0], &Field::Str(c.clone()), "row {i}"),
                None => assert_eq!(cols[0], &Field::Null, "row {i}"),
            }
            assert_eq!(cols[1], &Field::Long(ts[i]), "row {i}");
            assert_eq!(cols[2], &Field::Int(day[i]), "row {i}");
        }
        let back = ParquetReader::new(std::io::Cursor::new(bytes))
            .finish()
            .unwrap();
        assert!(back.equals_missing(&df));
    }
}
