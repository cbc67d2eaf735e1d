// The command channel's poll, timed (docs/PERFORMANCE.md, "Command channel"): the trainer calls
// CommandChannelReader.poll() at every step boundary (Trainer+Channel.swift). Built and run by
// bench/channel-poll.sh against the objects of a release build; prints one JSON line per case.
//
//   channel-poll [ROUNDS] [POLLS_PER_ROUND] [BUSY_POLLS]
//
// idle: an empty channel (an fstat and nothing else), ROUNDS rounds of POLLS_PER_ROUND polls, each
//       round timed as a whole; the median round's time per poll.
// busy-N: before each poll (untimed) gradflow attach's writer appends N command lines; each poll
//       (reading, splitting and decoding the N lines) is timed alone, BUSY_POLLS times; median and
//       99th percentile.
import Foundation
import Refinement
import Telemetry

func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

let args = CommandLine.arguments.dropFirst().compactMap { Int($0) }
let rounds = args.count > 0 ? args[0] : 9
let pollsPerRound = args.count > 1 ? args[1] : 200_000
let busyPolls = args.count > 2 ? args[2] : 20_000

let dir = NSTemporaryDirectory() + "gradflow-channel-poll-\(getpid())"
try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
defer { try? FileManager.default.removeItem(atPath: dir) }

func median(_ xs: [Double]) -> Double { let s = xs.sorted(); return s[s.count / 2] }
func percentile(_ xs: [Double], _ p: Double) -> Double { let s = xs.sorted(); return s[min(s.count - 1, Int(Double(s.count) * p))] }
func emit(_ fields: [String: Any]) {
    let data = try! JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys])
    print(String(decoding: data, as: UTF8.self))
}

// Idle.
do {
    let run = dir + "/idle"
    try FileManager.default.createDirectory(atPath: run, withIntermediateDirectories: true)
    let reader = try CommandChannelReader(runDirectory: run)
    var sink = 0
    for _ in 0..<10_000 { sink &+= reader.poll().count }
    var perPoll: [Double] = []
    for _ in 0..<rounds {
        let t0 = now()
        for _ in 0..<pollsPerRound { sink &+= reader.poll().count }
        perPoll.append(Double(now() - t0) / Double(pollsPerRound))
    }
    precondition(sink == 0, "an idle channel returned lines")
    emit(["case": "idle", "polls": rounds * pollsPerRound, "median_ns": median(perPoll), "min_ns": perPoll.min()!, "max_ns": perPoll.max()!])
}

// Busy: N lines waiting at each poll.
let commands: [Command.Action] = [
    .setWeight(WeightTarget(axis: .context, band: 2), 1.1), .setAdaptive(.depth, true), .scaleLearningRate(0.5),
    .setWeight(WeightTarget(axis: .time, band: 0), 0.9), .pause, .resume, .checkpointNow, .openTwin,
]
for n in [1, 3, 8] {
    let run = dir + "/busy\(n)"
    try FileManager.default.createDirectory(atPath: run, withIntermediateDirectories: true)
    let reader = try CommandChannelReader(runDirectory: run)
    let writer = try CommandChannelWriter(runDirectory: run, runId: "8d1f0c2a-bench")
    var sent = 0
    var times: [Double] = []
    times.reserveCapacity(busyPolls)
    for i in 0..<(busyPolls + 1_000) {
        for k in 0..<n {
            sent += 1
            writer.send(Command(commands[(i + k) % commands.count], source: .attach, id: "bench-\(getpid())-\(sent)"))
        }
        let t0 = now()
        let got = reader.poll()
        let dt = now() - t0
        precondition(got.count == n && got.allSatisfy { if case .success = $0.result { true } else { false } }, "poll returned \(got)")
        if i >= 1_000 { times.append(Double(dt)) }
    }
    emit(["case": "busy-\(n)", "lines_per_poll": n, "polls": busyPolls, "median_ns": median(times), "p99_ns": percentile(times, 0.99),
          "mean_ns": times.reduce(0, +) / Double(times.count)])
}
