// contract.go: the Go version of contract.c, built static (CGO_ENABLED=0) by the tests:
// prints its pid, TracerPid and VmLck, then VmLck after it allocates and touches --alloc MiB.
package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

func field(name string) string {
	data, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, name+":") {
			return strings.Fields(line[len(name)+1:])[0]
		}
	}
	return "?"
}

var keep []byte

func main() {
	alloc := 0
	if len(os.Args) > 2 && os.Args[1] == "--alloc" {
		alloc, _ = strconv.Atoi(os.Args[2])
	}
	fmt.Printf("pid %d\ntracer %s\nvmlck %s\n", os.Getpid(), field("TracerPid"), field("VmLck"))
	if alloc > 0 {
		keep = make([]byte, alloc<<20)
		for i := 0; i < len(keep); i += 4096 {
			keep[i] = 1
		}
		fmt.Printf("vmlck_after %s\n", field("VmLck"))
	}
	os.Exit(3)
}
