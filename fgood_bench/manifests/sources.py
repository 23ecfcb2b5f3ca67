"""Where each source dataset comes from, its terms and its reference: the licence part of an export's card.

The images of an export stay under their dataset's terms. Only what a dataset's own page, README or
paper says is quoted here (each entry's comment names where it was read); where none of them states
terms the entry says so and points at the page. ``license`` is the Hugging Face card's ``license:`` id
(https://huggingface.co/docs/hub/repositories-licenses): ``other`` where terms are stated but are no
standard licence, ``unknown`` where no terms are stated; none of these datasets names a standard licence
for its images.
"""

from __future__ import annotations

from dataclasses import dataclass

SEE_PAGE = "No licence is stated in fgood-bench's sources; read the terms on the project page before redistributing."


@dataclass(frozen=True)
class Source:
    homepage: str
    terms: str
    reference: str
    license: str = "unknown"


SOURCES = {
    # Nothing on terms in the README shipped in CUB_200_2011.tgz (as copied in datasets-mila/datasets--cub200); the
    # CUB-200 report (CNS-TR-2010-001), which CUB-200-2011 extends: "The images were downloaded from the
    # website Flickr and filtered by workers on Amazon Mechanical Turk". The project page was not readable.
    "cub": Source(
        "https://www.vision.caltech.edu/datasets/cub_200_2011/", SEE_PAGE,
        "C. Wah, S. Branson, P. Welinder, P. Perona, S. Belongie. The Caltech-UCSD Birds-200-2011 Dataset. "
        "Caltech technical report CNS-TR-2011-001, 2011."),
    "thudogs": Source(
        "https://cg.cs.tsinghua.edu.cn/ThuDogs/",
        # the dataset paper's abstract (https://doi.org/10.1007/s41095-020-0184-6): "The dataset is available
        # for academic purposes at https://cg.cs.tsinghua.edu.cn/ThuDogs/"; github.com/dejungle/Tsinghua-Dogs
        # README states no licence
        "Academic use: the dataset paper says \"The dataset is available for academic purposes\".",
        "D.-N. Zou, S.-H. Zhang, T.-J. Mu, M. Zhang. A new dataset of dog breed images and a benchmark for "
        "fine-grained classification. Computational Visual Media 6, 2020.", "other"),
    # Nothing on terms in the download's README.txt ("The images were acquired by searching the web and taking
    # pictures") nor in TensorFlow Datasets' oxford_flowers102 catalogue page.
    "flowers102": Source(
        "https://www.robots.ox.ac.uk/~vgg/data/flowers/102/", SEE_PAGE,
        "M.-E. Nilsback, A. Zisserman. Automated flower classification over a large number of classes. ICVGIP 2008."),
    # Nothing on terms in car_devkit's README.txt nor in TensorFlow Datasets' cars196 or torchvision's
    # StanfordCars pages; the project page is no longer online (torchvision: "the original URL ... is broken").
    "stanford_cars": Source(
        "https://ai.stanford.edu/~jkrause/cars/car_dataset.html", SEE_PAGE,
        "J. Krause, M. Stark, J. Deng, L. Fei-Fei. 3D Object Representations for Fine-Grained Categorization. "
        "3dRR workshop at ICCV 2013."),
    "fgvc_aircraft": Source(
        "https://www.robots.ox.ac.uk/~vgg/data/fgvc-aircraft/",
        # the dataset's README: "made available for non-commercial research purposes only by a number of
        # airplane spotters ... the original authors retain the copyright"
        "Non-commercial research use only; the photographers keep the copyright of their photographs.",
        "S. Maji, J. Kannala, E. Rahtu, M. Blaschko, A. Vedaldi. Fine-Grained Visual Classification of Aircraft. "
        "arXiv:1306.5151, 2013.", "other"),
    "places365": Source(
        "http://places2.csail.mit.edu/",
        # the terms of http://places2.csail.mit.edu/download.html ("by downloading the image data you agree to
        # the following terms: You will use the data only for non-commercial research and educational
        # purposes. You will NOT distribute the above images. ..."), as three public copies on GitHub quote it
        # word for word (one cites the Wayback capture
        # https://web.archive.org/web/20210220220343/http://places2.csail.mit.edu/download.html); and the
        # authors' README at github.com/CSAILVision/places365: "The copyright of all the images belongs to the
        # image owners." (github.com/zhoubolei/places_devkit's README says so "of all the images from the
        # Places and Places2 database")
        "Places2 terms of use: non-commercial research and educational use only, and \"You will NOT distribute "
        "the above images\"; \"The copyright of all the images belongs to the image owners.\"",
        "B. Zhou, A. Lapedriza, A. Khosla, A. Oliva, A. Torralba. Places: A 10 Million Image Database for Scene "
        "Recognition. IEEE TPAMI, 2017.", "other"),
    "dtd": Source(
        "https://www.robots.ox.ac.uk/~vgg/data/dtd/",
        # the project page's opening paragraph, as TensorFlow Datasets' dtd description reproduces it
        # (tensorflow/datasets docs/catalog/dtd.md): "This data is made available to the computer vision
        # community for research purposes"; the download's README.txt states no licence
        "Research use: the project page says \"This data is made available to the computer vision community for "
        "research purposes\"; it names no licence.",
        "M. Cimpoi, S. Maji, I. Kokkinos, S. Mohamed, A. Vedaldi. Describing Textures in the Wild. CVPR 2014.", "other"),
    "imagenet": Source(
        "https://image-net.org/",
        # image-net.org's terms of access: the database is for "non-commercial research and educational purposes"
        "ImageNet's terms of access: non-commercial research and educational use only.",
        "O. Russakovsky et al. ImageNet Large Scale Visual Recognition Challenge. IJCV 115, 2015.", "other"),
    # Nothing on terms in the parts of https://data.vision.ee.ethz.ch/cvl/webvision/dataset2017.html and its
    # README.txt that could be read; both say the images were crawled from Flickr and Google Images search.
    "webvision": Source(
        "https://data.vision.ee.ethz.ch/cvl/webvision/", SEE_PAGE,
        "W. Li, L. Wang, W. Li, E. Agustsson, L. Van Gool. WebVision Database: Visual Learning and Understanding "
        "from Web Data. arXiv:1708.02862, 2017."),
    # Nothing on terms in minc-2500/README.txt. The MINC paper: "we collected over 2.3 million material labels
    # from Flickr and Houzz images"; only OpenSurfaces, MINC's seed, is said to be Creative Commons (its
    # publication page, github.com/seanbell/opensurfaces, thanks "the Flickr users who released their images
    # under Creative Commons licenses"), so no one licence is stated for MINC-2500's patches.
    "minc2500": Source(
        "http://opensurfaces.cs.cornell.edu/publications/minc/", SEE_PAGE,
        "S. Bell, P. Upchurch, N. Snavely, K. Bala. Material Recognition in the Wild with the Materials in Context "
        "Database. CVPR 2015."),
}

UNKNOWN = Source("", "Images of a folder of the user's own: their terms are the owner's to check.", "")


def source_of(dataset_id: str) -> Source:
    return SOURCES.get(dataset_id, UNKNOWN)
