// A G1 workload for docs/jvm.md: short-lived garbage plus a retained set that churns, so
// that G1 collects young regions often, promotes, and grows the heap from -Xms towards
// -Xmx (committing regions inside its pauses). Prints the total GC time, the wall time,
// and VmRSS and VmLck from /proc/self/status at the end.
import java.lang.management.GarbageCollectorMXBean;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

public class G1Bench {
    public static void main(String[] args) throws Exception {
        long rounds = args.length > 0 ? Long.parseLong(args[0]) : 3_000_000L;
        long start = System.nanoTime();
        Random random = new Random(42);
        List<byte[]> retained = new ArrayList<>();
        long sum = 0;
        for (long i = 0; i < rounds; i++) {
            byte[] garbage = new byte[64 + random.nextInt(512)];
            sum += garbage.length;
            if (i % 16 == 0) {
                byte[] kept = new byte[1024 + random.nextInt(4096)];
                if (retained.size() < 60_000) {
                    retained.add(kept);
                } else {
                    retained.set(random.nextInt(retained.size()), kept);
                }
            }
        }
        long wallMs = (System.nanoTime() - start) / 1_000_000;
        long gcMs = 0;
        long gcCount = 0;
        for (GarbageCollectorMXBean gc : ManagementFactory.getGarbageCollectorMXBeans()) {
            gcMs += gc.getCollectionTime();
            gcCount += gc.getCollectionCount();
        }
        String rss = "?";
        String lck = "?";
        for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
            if (line.startsWith("VmRSS:")) rss = line.substring(6).trim();
            if (line.startsWith("VmLck:")) lck = line.substring(6).trim();
        }
        System.out.println("gc_ms " + gcMs + " gc_count " + gcCount + " wall_ms " + wallMs
                + " rss " + rss + " vmlck " + lck + " retained " + retained.size() + " sum " + sum);
    }
}
