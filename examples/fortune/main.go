package main

import (
	"flag"
	"fmt"
	"os"

	fortunemodel "github.com/minerva-ml/minerva/examples/fortune/artifact/go"
	"github.com/minerva-ml/minerva/models"
	"github.com/minerva-ml/minerva/program"
	"github.com/minerva-ml/minerva/runtime/gpu"
	"github.com/minerva-ml/minerva/runtime/tokenizer"
	"github.com/minerva-ml/minerva/runtime/weights"
)

func main() {
	prompt := flag.String("prompt", "The meaning of life is", "the text to continue")
	n := flag.Int("max-tokens", 24, "tokens to generate")
	flag.Parse()
	if err := run(*prompt, *n); err != nil {
		fmt.Fprintln(os.Stderr, "fortune:", err)
		os.Exit(1)
	}
}

// device opens Metal where there is one, and mslemu otherwise.
func device() (gpu.Device, error) {
	p, _, err := program.DecodeArtifact(fortunemodel.Manifest, fortunemodel.KernelsMetal, "fortunemodel")
	if err != nil {
		return nil, err
	}
	if gpu.MetalAvailable() {
		return gpu.NewMetal(p.Code)
	}
	return gpu.NewEmulator(p.Code, 1)
}

func run(prompt string, maxTokens int) error {
	ck, err := weights.FromBytes("fortune/model.safetensors", models.FortuneFile("model.safetensors"))
	if err != nil {
		return err
	}
	defer ck.Close()
	dev, err := device()
	if err != nil {
		return err
	}
	defer dev.Close()
	m, err := fortunemodel.New(dev, ck)
	if err != nil {
		return err
	}
	tok, err := tokenizer.Parse(models.FortuneFile("tokenizer.json"))
	if err != nil {
		return err
	}
	var ids []int32
	for _, id := range tok.Encode(prompt) {
		ids = append(ids, int32(id))
	}
	logits, err := m.Forward(ids, 0)
	if err != nil {
		return err
	}
	dec := tok.NewStreamDecoder()
	pos := len(ids)
	last := logits[(len(ids)-1)*fortunemodel.Vocab:]
	for i := 0; i < maxTokens && pos < fortunemodel.Ctx; i++ {
		next := int32(argmax(last))
		text, err := dec.Next(int(next))
		if err != nil {
			return err
		}
		fmt.Print(text)
		if last, err = m.Forward([]int32{next}, pos); err != nil {
			return err
		}
		pos++
	}
	fmt.Println(dec.Flush())
	return nil
}

func argmax(x []float32) int {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return best
}
