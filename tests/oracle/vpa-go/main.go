// Prints upstream VPA 1.7.1's own bucket starts and FindBucket results: the oracle
// constants pinned in tests/unit/test_vpa_upstream_exact.py. Not run by the test suite.
//
//	cd tests/oracle/vpa-go && GOFLAGS=-mod=mod go run .            # starts, CPUAmountFromCores
//	echo "mem 20500000" | GOFLAGS=-mod=mod go run . find           # FindBucket of chosen values
package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"

	"k8s.io/autoscaler/vertical-pod-autoscaler/pkg/recommender/model"
	"k8s.io/autoscaler/vertical-pod-autoscaler/pkg/recommender/util"
)

func main() {
	cpu, _ := util.NewExponentialHistogramOptions(1000.0, 0.01, 1.05, 0.0001)
	mem, _ := util.NewExponentialHistogramOptions(1e12, 1e7, 1.05, 0.0001)
	small, _ := util.NewExponentialHistogramOptions(500, 40, 1.5, 0.0001)
	if len(os.Args) > 1 && os.Args[1] == "find" {
		// stdin: lines "cpu|mem VALUE"; stdout: "cpu|mem VALUE BUCKET"
		scanner := bufio.NewScanner(os.Stdin)
		for scanner.Scan() {
			parts := strings.Fields(scanner.Text())
			v, _ := strconv.ParseFloat(parts[1], 64)
			o := cpu
			if parts[0] == "mem" {
				o = mem
			}
			fmt.Printf("%s %.17g %d\n", parts[0], v, o.FindBucket(v))
		}
		return
	}
	fmt.Println("cpu", cpu.NumBuckets(), "mem", mem.NumBuckets())
	for b := 0; b < cpu.NumBuckets(); b++ {
		fmt.Printf("start %d %.17g %.17g\n", b, cpu.GetBucketStart(b), mem.GetBucketStart(b))
	}
	for _, v := range []float64{-1, 39.99, 40, 100, 900} {
		fmt.Printf("small %.17g %d\n", v, small.FindBucket(v))
	}
	for _, c := range []float64{0.2585, 0.258, 0.0105, 1.0} {
		a := model.CPUAmountFromCores(c)
		fmt.Printf("cpuamount %.17g %d %d %d\n", c, a, cpu.FindBucket(c), cpu.FindBucket(model.CoresFromCPUAmount(a)))
	}
}
