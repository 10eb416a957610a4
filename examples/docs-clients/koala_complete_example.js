// Function to generate images
async function generateImages(prompt, style = "photo", size = "1024x1024", numImages = 1) {
  try {
    const response = await fetch(`${process.env.KOALA_BASE_URL}/image-generation/`, {
      method: "POST",
      headers: {
        Authorization: `Bearer ${process.env.KOALA_API_KEY}`,
        "Content-Type": "application/json"
      },
      body: JSON.stringify({
        prompt,
        style,
        size,
        numImages,
        model: "gpt-image-2",
        quality: "fast", // "medium" or "high" cost more credits
        enhancePrompt: "on",
        generateAltText: true // populates the response's alt field
        // For 'gpt-image-2' you can also include:
        // referenceImages: ["https://example.com/image1.jpg", "https://example.com/image2.jpg"],
        // preserveOriginal: true // store the raw PNG for maximum quality
      })
    });

    if (!response.ok) {
      throw new Error(`HTTP error! status: ${response.status}`);
    }

    const images = await response.json();
    return images;
  } catch (error) {
    console.error("Error generating images:", error);
    return null;
  }
}

// Example usage
async function main() {
  const images = await generateImages(
    "A majestic mountain landscape with a lake reflecting the sunrise",
    "watercolor",
    "1536x640",
    2
  );

  if (images) {
    console.log(`Generated ${images.length} images:`);
    images.forEach((image, index) => {
      console.log(`Image ${index + 1}: ${image.url}`);
      if (image.alt) {
        console.log(`  Alt: ${image.alt}`);
      }
    });
  }
}

main();
