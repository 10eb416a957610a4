fetch(`${process.env.KOALA_BASE_URL}/image-generation/`, {
  method: "POST",
  headers: {
    Authorization: `Bearer ${process.env.KOALA_API_KEY}`,
    "Content-Type": "application/json"
  },
  body: JSON.stringify({
    prompt: "cat",
    style: "watercolor",
    size: "1024x1024",
    numImages: 1,
    model: "gpt-image-2",
    quality: "medium",
    enhancePrompt: "on",
    generateAltText: true
  })
});
