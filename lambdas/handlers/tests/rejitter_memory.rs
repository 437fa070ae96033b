//! Integration: re-jitter's memory with messages as large as SQS allows (issue 13 item 6).
//!
//! A counting global allocator records the heap's high-water mark while one `rejitter` slice
//! moves 1 MiB messages (body plus 10 attributes exactly at SQS's 1,048,576-byte limit) through
//! the testkit's `FakeQueue`, with the settings the handler builds from its environment
//! (`AWS_LAMBDA_FUNCTION_MEMORY_SIZE`, set by Lambda). The queue's own contents are measured
//! before the pass and subtracted; what remains is what the pass holds: received messages,
//! copies, batches in flight (and the copies the fake queue stores before their originals are
//! deleted). It must stay within 80 % of the function's memory less the runtime's fixed
//! overhead (32 MiB), and every message must arrive byte-identical.
//!
//! One test per binary (the allocator is process-wide): nextest runs each test in its own
//! process, and this file holds only one.

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use breaker_core::config::Config;
use breaker_core::message::{AttributeValue, OutgoingMessage};
use breaker_handlers::rejitter::{RejitterSettings, run_rejitter};
use breaker_testkit::FakeQueue;
use serde_json::json;

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged; only counters are kept.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same layout, forwarded.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = CURRENT.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) };
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size >= layout.size() {
                let now = CURRENT.fetch_add(new_size - layout.size(), Ordering::Relaxed)
                    + (new_size - layout.size());
                PEAK.fetch_max(now, Ordering::Relaxed);
            } else {
                CURRENT.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const MIB: usize = 1024 * 1024;
/// SQS's limit on one message: body plus attribute names, types and values.
const LIMIT: usize = 1_048_576;

/// Ten attributes (String, Number, Binary and custom types) and a body filling the message to
/// exactly `size` bytes as SQS counts them.
fn message(i: usize, size: usize) -> OutgoingMessage {
    let mut attributes = BTreeMap::new();
    for a in 0..10 {
        let value = match a % 3 {
            0 => AttributeValue::string("String", format!("tenant-{i}-{a}")),
            1 => AttributeValue::string("Number.int", format!("{}", i * 1_000 + a)),
            _ => AttributeValue::binary("Binary", vec![(i % 256) as u8, 0, 255, a as u8]),
        };
        attributes.insert(format!("attr{a}"), value);
    }
    let mut m = OutgoingMessage {
        id: String::new(),
        body: String::new(),
        message_attributes: attributes,
        trace_header: Some(format!("Root=1-5759e988-{i:024x};Sampled=1")),
        delay_seconds: 0,
        fifo: None,
    };
    let head = format!("{{\"order\":{i},\"pad\":\"");
    let fill = size - m.payload_size() - head.len() - 2;
    m.body = format!("{head}{}\"}}", "é".repeat(fill / 2) + &"x".repeat(fill % 2));
    assert_eq!(m.payload_size(), size);
    m
}

/// One slice over `count` messages of `size` bytes at `memory_mib` of function memory: the heap
/// the handler holds at its peak, in bytes.
async fn peak_of_a_pass(count: usize, size: usize, memory_mib: u64) -> usize {
    let q = FakeQueue::new();
    let now = q.now_ms();
    for i in 0..count {
        q.push_sent_at(message(i, size), now - 60_000);
    }
    let env = [
        ("CIRCUIT_NAME", "orders".to_owned()),
        ("ESM_UUID", "esm-1".to_owned()),
        (
            "QUEUE_URL",
            "http://127.0.0.1/123456789012/orders".to_owned(),
        ),
        (
            "QUEUE_ARN",
            "arn:aws:sqs:eu-west-1:123456789012:orders".to_owned(),
        ),
        ("CONSUMER_FUNCTION_NAME", "orders-consumer".to_owned()),
        ("ALARM_NAME", "orders-errors".to_owned()),
        ("CIRCUIT_TABLE_NAME", "orders-circuit".to_owned()),
        ("REJITTER_MIN_SECONDS", "1".to_owned()),
        ("REJITTER_SLICE_SECONDS", "600".to_owned()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", memory_mib.to_string()),
    ];
    let config = Config::from_lookup(|k| env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone()))
        .expect("config");
    let mut settings = RejitterSettings::from_config(&config).expect("settings");
    settings.seed = Some(7);
    let input = json!({"worker": 0, "cutoffMs": now - 1_000});
    let baseline = CURRENT.load(Ordering::Relaxed);
    PEAK.store(baseline, Ordering::Relaxed);
    let out = run_rejitter(&q, &settings, input).await.expect("rejitter");
    let peak = PEAK.load(Ordering::Relaxed) - baseline;
    assert_eq!(out.moved, count as u64, "every message moved");
    assert_eq!(out.failed, 0);
    // Byte-identical: body, all 10 attributes and the trace header, each message exactly once.
    let stored = q.messages();
    assert_eq!(stored.len(), count);
    let mut orders: Vec<usize> = Vec::new();
    for m in stored {
        let i: usize = m.body["{\"order\":".len()..m.body.find(',').expect("order")]
            .parse()
            .expect("order");
        let original = message(i, size);
        assert_eq!(m.body, original.body, "order {i} body");
        assert_eq!(
            m.message_attributes, original.message_attributes,
            "order {i}"
        );
        assert_eq!(m.trace_header, original.trace_header, "order {i}");
        assert!(m.delay_seconds >= 1, "order {i} is a delayed copy");
        orders.push(i);
    }
    orders.sort_unstable();
    assert_eq!(orders, (0..count).collect::<Vec<_>>());
    peak
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_mib_messages_with_ten_attributes_move_byte_identical_within_the_memory_budget() {
    // 128 MiB (Lambda's default) and 512 MiB (the construct's re-jitter default).
    for memory_mib in [128u64, 512] {
        // 80 % of the function's memory, less what the runtime holds besides the messages.
        let budget = memory_mib as usize * MIB / 100 * 80 - 32 * MIB;
        for (count, size) in [(120, LIMIT), (200, 256 * 1024)] {
            let peak = peak_of_a_pass(count, size, memory_mib).await;
            eprintln!(
                "{memory_mib} MiB, {count} x {size} B: peak {:.1} MiB held by the pass (budget {:.1} MiB)",
                peak as f64 / MIB as f64,
                budget as f64 / MIB as f64
            );
            assert!(
                peak <= budget,
                "{memory_mib} MiB function, {size}-byte messages: the pass held {peak} bytes, over its budget of {budget}"
            );
        }
    }
}
