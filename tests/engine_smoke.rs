use serde_json::json;
use spin_work_queue::kv::MemoryKv;
use spin_work_queue::*;
use std::sync::Arc;

fn queue() -> (KvWorkQueue<MemoryKv>, ManualClock) {
    let clock = ManualClock::new(1_700_000_000_000);
    let config = QueueConfig {
        maintenance_period_ms: 1,
        ..QueueConfig::default()
    };
    (
        KvWorkQueue::with_config(MemoryKv::new(), config, Arc::new(clock.clone())).unwrap(),
        clock,
    )
}

#[tokio::test]
async fn lifecycle() {
    let (q, clock) = queue();
    let ids = q
        .enqueue_batch(vec![
            NewTask::new("p", "a", json!(1)),
            NewTask::new("p", "b", json!(2)),
        ])
        .await
        .unwrap();
    assert_eq!(q.pending_count().await.unwrap(), 2);
    let got = q.dequeue(&DequeueRequest::new("w", 10)).await.unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].task.id, ids[0].id);
    let st = q.stats().await.unwrap();
    assert_eq!((st.pending, st.in_progress), (0, 2));
    q.ack(&got[0].task.id, &got[0].lease.id, json!("A"))
        .await
        .unwrap();
    q.fail_leased(&got[1].task.id, &got[1].lease.id, "boom", true)
        .await
        .unwrap();
    let st = q.stats().await.unwrap();
    assert_eq!(
        (st.completed, st.failed, st.in_progress),
        (1, 1, 0),
        "{st:?}"
    );
    clock.advance(1_000);
    let again = q.dequeue(&DequeueRequest::new("w", 10)).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].task.attempt, 1);
    // let the lease expire
    clock.advance(31_000);
    let r = q.rescue().await.unwrap();
    assert_eq!(r.rescued, 1, "{r:?}");
    let third = q.dequeue(&DequeueRequest::new("w", 10)).await.unwrap();
    assert_eq!(third[0].task.attempt, 2);
    assert!(matches!(
        q.ack(&again[0].task.id, &again[0].lease.id, json!(0)).await,
        Err(QueueError::LeaseLost { .. })
    ));
    q.ack(&third[0].task.id, &third[0].lease.id, json!("B"))
        .await
        .unwrap();
    let res = q.collect_results("p").await.unwrap();
    assert_eq!(
        res,
        vec![("a".to_string(), json!("A")), ("b".to_string(), json!("B"))]
    );
    clock.advance(1);
    q.rescue().await.unwrap();
    let res = q.collect_results("p").await.unwrap();
    assert_eq!(
        res,
        vec![("a".to_string(), json!("A")), ("b".to_string(), json!("B"))]
    );
    let st = q.stats().await.unwrap();
    assert_eq!(
        st,
        QueueStats {
            pending: 0,
            in_progress: 0,
            completed: 2,
            failed: 0,
            dead_letter: 0
        }
    );
}
